"""Keeping records current from the Outlook task pane, in a real browser (Debian's chromium,
driven by Playwright) against the running service: edit a contact, move a lead through its
stages, close and reopen a ticket, undo a done task, merge a duplicate, and a stale edit.

The browser runs in a zone of its own (Asia/Kolkata, UTC+05:30), so that a history line
shown in UTC or in the machine's zone would not pass: every line is checked against
connector.lookup.view_models' history_line and local_time in that zone."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from connector.lookup.view_models import history_line, local_time
from tests.fakes.servers import serve
from tests.helpers import create_company, create_contact, create_lead
from tests.test_outlook_taskpane import ARTIFACTS, OFFICE_MOCK, item

BROWSER_ZONE = "Asia/Kolkata"
STALE = "Someone changed this contact since you opened it; nothing was saved."

Page = Any


@pytest.fixture
def open_pane(app: Any, caller: Any, browser: Any) -> Iterator[Callable[..., Page]]:
    """Opens the pane on a message from `sender`, with the caller's key; one page a test."""
    with serve(app) as base:
        context = browser.new_context(
            viewport={"width": 320, "height": 1000}, timezone_id=BROWSER_ZONE
        )
        page = context.new_page()
        page.route(
            "https://appsforoffice.microsoft.com/**",
            lambda route: route.fulfill(
                status=200, content_type="application/javascript", body="/* mocked */"
            ),
        )

        def open_on(sender: str = "hank@globex.test", name: str = "Hank Scorpio") -> Page:
            message = item(**{"from": {"displayName": name, "emailAddress": sender}})
            config = {"apiKey": caller.key, "item": message, "oldClient": False, "naa": False}
            page.add_init_script(f"window.__officeConfig = {json.dumps(config)};")
            page.add_init_script(OFFICE_MOCK)
            page.goto(base + "/static/outlook/taskpane.html")
            return page

        yield open_on
        context.close()


def expected_lines(card: dict[str, Any]) -> list[str]:
    """The card's history as the Python side words it, in the browser's zone."""
    zone = ZoneInfo(BROWSER_ZONE)
    return [history_line(entry, local_time(entry["at"], zone)) for entry in card["history"]]


def shown_history(page: Page) -> list[str]:
    return page.locator("section[aria-label=History] li").all_inner_texts()


def fact(page: Page, label: str) -> str:
    """What a card shows over `label` ("Phone", "Emails", "Lost reason"), once shown."""
    sub = page.locator("main > ul.items > li > span.sub").filter(
        has_text=re.compile(f"^{re.escape(label)}$")
    )
    sub.wait_for()
    return str(sub.evaluate("(sub) => sub.parentElement.firstChild.textContent"))


def patches(page: Page) -> list[tuple[str, str]]:
    """Records (method, path) of every write the pane sends from now on."""
    sent: list[tuple[str, str]] = []
    page.on(
        "request",
        lambda request: (
            sent.append((request.method, request.url.split("/api/v1", 1)[-1]))
            if request.method in ("PATCH", "POST", "DELETE")
            else None
        ),
    )
    return sent


def _ticket(caller: Any, **fields: Any) -> dict[str, Any]:
    response = caller.post("/api/v1/tickets", json={"subject": "Printer on fire", **fields})
    assert response.status_code == 201, response.json
    return response.json["ticket"]


def test_edit_a_contact(open_pane, caller) -> None:
    create_company(caller)
    contact = create_contact(caller, "Hank Scorpoi", job_title="CEO")
    create_contact(caller, "Marge", ["marge@globex.test"])
    page = open_pane()
    page.get_by_role("heading", name="Hank Scorpoi").wait_for()
    page.get_by_role("button", name="Edit contact").click()
    form = page.get_by_role("form", name="Edit contact")
    assert form.get_by_label("Name").input_value() == "Hank Scorpoi"
    assert form.get_by_label("Job title").input_value() == "CEO"
    assert form.get_by_label("Emails").input_value() == "hank@globex.test"

    # Marge's address is taken: the API's words next to the form, what was typed kept.
    form.get_by_label("Name").fill("Hank Scorpio")
    form.get_by_label("Phone").fill("+1 555 0100")
    form.get_by_label("Emails").fill("hank@globex.test\nmarge@globex.test")
    with page.expect_response(lambda r: r.request.method == "PATCH") as answer:
        form.get_by_role("button", name="Save").click()
    assert answer.value.status == 409
    alert = form.get_by_role("alert")
    alert.wait_for()
    assert "marge@globex.test" in alert.inner_text()
    assert form.get_by_label("Name").input_value() == "Hank Scorpio"
    assert form.get_by_label("Phone").input_value() == "+1 555 0100"

    form.get_by_label("Emails").fill("hank@globex.test\nh.scorpio@globex.test")
    form.get_by_label("Job title").fill("")
    with page.expect_response(lambda r: r.request.method == "PATCH") as answer:
        form.get_by_role("button", name="Save").click()
    assert answer.value.status == 200
    assert answer.value.request.headers["if-match"] == '"1"'
    page.get_by_role("heading", name="Hank Scorpio", exact=True).wait_for()

    card = caller.get(f"/api/v1/contacts/{contact['id']}").json
    saved = card["contact"]
    assert (saved["name"], saved["phone"], saved["job_title"]) == (
        "Hank Scorpio",
        "+1 555 0100",
        None,
    )
    assert saved["emails"] == ["hank@globex.test", "h.scorpio@globex.test"]
    assert saved["version"] == 2
    found = caller.get("/api/v1/lookup?email=h.scorpio@globex.test").json["results"][0]
    assert found["contact"]["id"] == contact["id"]
    # The card shown is the answered one: its history, worded and timed as Python does.
    assert shown_history(page) == expected_lines(card)
    assert any(
        line.startswith("name: Hank Scorpoi → Hank Scorpio, by ann, ")
        for line in shown_history(page)
    )
    assert fact(page, "Emails") == "hank@globex.test, h.scorpio@globex.test"


def test_move_a_lead_new_qualified_won(open_pane, caller) -> None:
    contact = create_contact(caller)
    lead = create_lead(caller, title="50 seats", contact_id=contact["id"])
    page = open_pane()
    page.get_by_role("heading", name="Hank Scorpio").wait_for()

    page.get_by_label("Stage of 50 seats").select_option("qualified")
    page.get_by_role("heading", name="50 seats").wait_for()
    page.get_by_text("stage: new → qualified", exact=False).wait_for()
    page.get_by_label("Stage of 50 seats").select_option("won")
    page.get_by_text("stage: qualified → won", exact=False).wait_for()

    card = caller.get(f"/api/v1/leads/{lead['id']}").json
    assert card["lead"]["stage"] == "won" and card["lead"]["version"] == 3
    stages = [line for line in shown_history(page) if line.startswith("stage: ")]
    assert [line.split(", by")[0] for line in stages] == [
        "stage: qualified → won",
        "stage: new → qualified",
    ]
    assert shown_history(page) == expected_lines(card)
    assert page.get_by_label("Stage of 50 seats").input_value() == "won"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "outlook-lead-card.png"), full_page=True)

    # Won is closed: back on the sender's card, it is no longer an open lead.
    page.get_by_role("button", name="‹ Hank Scorpio").click()
    page.get_by_role("heading", name="Hank Scorpio").wait_for()
    assert page.get_by_role("heading", name="Open leads").count() == 0


def test_lost_asks_for_a_reason_first(open_pane, caller) -> None:
    contact = create_contact(caller)
    lead = create_lead(caller, title="50 seats", contact_id=contact["id"])
    page = open_pane()
    page.get_by_role("heading", name="Hank Scorpio").wait_for()
    sent = patches(page)

    stage = page.get_by_label("Stage of 50 seats")
    stage.select_option("lost")
    reason_form = page.get_by_role("form", name="Why 50 seats was lost")
    reason_form.get_by_label("Lost reason").wait_for()
    reason_form.get_by_role("button", name="Cancel").click()
    assert stage.input_value() == "new"
    assert reason_form.count() == 0

    stage.select_option("lost")
    # No reason, no request: the browser asks for it.
    reason_form.get_by_role("button", name="Mark lost").click()
    assert sent == []
    assert caller.get(f"/api/v1/leads/{lead['id']}").json["lead"]["stage"] == "new"

    reason_form.get_by_label("Lost reason").fill("Went with Initech")
    with page.expect_response(lambda r: r.request.method == "PATCH") as answer:
        reason_form.get_by_role("button", name="Mark lost").click()
    assert answer.value.status == 200
    assert json.loads(answer.value.request.post_data) == {
        "stage": "lost",
        "lost_reason": "Went with Initech",
    }
    page.get_by_text("stage: new → lost", exact=False).wait_for()
    saved = caller.get(f"/api/v1/leads/{lead['id']}").json["lead"]
    assert (saved["stage"], saved["lost_reason"]) == ("lost", "Went with Initech")
    assert fact(page, "Lost reason") == "Went with Initech"
    assert sent == [("PATCH", f"/leads/{lead['id']}")]


def test_close_then_reopen_a_ticket(open_pane, caller) -> None:
    contact = create_contact(caller)
    ticket = _ticket(caller, contact_id=contact["id"], priority="high")
    page = open_pane()
    page.get_by_role("heading", name="Hank Scorpio").wait_for()

    page.get_by_role("button", name="Close Printer on fire").click()
    page.get_by_role("button", name="Reopen Printer on fire").wait_for()
    assert page.get_by_role("heading", name="Printer on fire").is_visible()
    assert caller.get(f"/api/v1/tickets/{ticket['id']}").json["ticket"]["status"] == "closed"
    page.get_by_text("status: new → closed", exact=False).wait_for()

    page.get_by_role("button", name="‹ Hank Scorpio").click()
    page.get_by_role("heading", name="Hank Scorpio").wait_for()
    assert page.get_by_role("heading", name="Open tickets").count() == 0
    assert page.get_by_text("Printer on fire").count() == 0
    assert caller.get("/api/v1/lookup?email=hank@globex.test").json["results"][0]["tickets"] == []

    # Closed, it is found by searching; its card reopens it.
    page.get_by_label("Search records").fill("printer")
    page.get_by_label("Search records").press("Enter")
    page.get_by_role("button", name="Printer on fire").click()
    page.get_by_role("button", name="Reopen Printer on fire").click()
    page.get_by_role("button", name="Close Printer on fire").wait_for()
    assert caller.get(f"/api/v1/tickets/{ticket['id']}").json["ticket"]["status"] == "open"
    card = caller.get(f"/api/v1/tickets/{ticket['id']}").json
    assert shown_history(page) == expected_lines(card)

    page.get_by_role("button", name="‹ Hank Scorpio").click()
    page.get_by_role("heading", name="Open tickets").wait_for()
    assert page.get_by_text("open · high").is_visible()


def test_undo_a_completed_task(open_pane, caller) -> None:
    contact = create_contact(caller)
    task = caller.post(
        "/api/v1/tasks",
        json={"title": "Call Hank", "record": {"type": "contact", "id": contact["id"]}},
    ).json
    page = open_pane()
    page.get_by_role("heading", name="Hank Scorpio").wait_for()

    page.get_by_role("button", name="Done: Call Hank").click()
    undo = page.get_by_role("button", name="Undo")
    undo.wait_for()
    assert page.get_by_role("button", name="Done: Call Hank").count() == 0
    done = caller.get("/api/v1/tasks?include_done=true").json
    assert [(t["id"], t["done"]) for t in done] == [(task["id"], True)]

    with page.expect_response(lambda r: r.request.method == "PATCH") as answer:
        undo.click()
    assert json.loads(answer.value.request.post_data) == {"done": False}
    page.get_by_role("button", name="Done: Call Hank").wait_for()
    assert undo.count() == 0
    card = caller.get(f"/api/v1/contacts/{contact['id']}").json
    assert [(t["id"], t["done"]) for t in card["tasks"]] == [(task["id"], False)]

    # Done again, then another action: the offer to undo is gone.
    page.get_by_role("button", name="Done: Call Hank").click()
    undo.wait_for()
    page.get_by_role("button", name="Add note").click()
    undo.wait_for(state="detached")


def test_merge_a_duplicate(open_pane, caller) -> None:
    create_company(caller)
    ana = create_contact(caller, "Ana Lima", ["ana@globex.test"])
    dup = create_contact(caller, "ana lima", ["ana.lima@globex.test"], phone="+1 555 0100")
    page = open_pane("ana@globex.test", "Ana Lima")
    page.get_by_text("Possible duplicate: ana lima (ana.lima@globex.test)").wait_for()

    page.get_by_role("button", name="Merge ana lima into this contact").click()
    confirm = page.get_by_role("region", name="Merge contacts")
    with page.expect_response(lambda r: "/merge" in r.url) as answer:
        confirm.get_by_role("button", name="Merge", exact=True).click()
    assert answer.value.status == 200
    assert json.loads(answer.value.request.post_data) == {"from": dup["id"]}
    page.get_by_text("Possible duplicate").wait_for(state="detached")
    assert fact(page, "Emails") == "ana@globex.test, ana.lima@globex.test"
    assert fact(page, "Phone") == "+1 555 0100"

    found = caller.get("/api/v1/lookup?email=ana.lima@globex.test").json["results"][0]
    assert found["contact"]["id"] == ana["id"]
    assert caller.get(f"/api/v1/contacts/{dup['id']}").status_code == 404
    card = caller.get(f"/api/v1/contacts/{ana['id']}").json
    assert shown_history(page) == expected_lines(card)
    assert any(line.startswith("merged ana lima") for line in shown_history(page))
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "outlook-merged-contact.png"), full_page=True)


def test_a_stale_edit_saves_nothing_and_keeps_the_other_change(open_pane, caller) -> None:
    contact = create_contact(caller, job_title="CEO")
    url = f"/api/v1/contacts/{contact['id']}"
    page = open_pane()
    page.get_by_role("heading", name="Hank Scorpio").wait_for()
    page.get_by_role("button", name="Edit contact").click()
    form = page.get_by_role("form", name="Edit contact")
    form.get_by_label("Job title").fill("CTO")

    # Someone else changes the contact while the form is open.
    assert caller.patch(url, json={"phone": "+1 555 0199"}).status_code == 200

    with page.expect_response(lambda r: r.request.method == "PATCH") as answer:
        form.get_by_role("button", name="Save").click()
    assert answer.value.status == 412
    page.get_by_role("alert").get_by_text(STALE).wait_for()
    # Reloaded: the other change is on the card, and was kept.
    assert fact(page, "Phone") == "+1 555 0199"
    after = caller.get(url).json["contact"]
    assert (after["phone"], after["job_title"], after["version"]) == ("+1 555 0199", "CEO", 2)

    # What the user typed is not lost: their change offered again, over the fresh version.
    page.get_by_role("button", name="Edit again with your changes").click()
    assert form.get_by_label("Job title").input_value() == "CTO"
    assert form.get_by_label("Phone").input_value() == "+1 555 0199"
    with page.expect_response(lambda r: r.request.method == "PATCH") as answer:
        form.get_by_role("button", name="Save").click()
    assert answer.value.status == 200
    assert answer.value.request.headers["if-match"] == '"2"'
    assert json.loads(answer.value.request.post_data) == {"job_title": "CTO"}
    page.get_by_text("CTO", exact=True).wait_for()
    after = caller.get(url).json["contact"]
    assert (after["phone"], after["job_title"]) == ("+1 555 0199", "CTO")
