"""What new users stumbled on in the Outlook task pane (issue 15), each in a real browser
(Debian's chromium, driven by Playwright) against the running service, with the Office mock
of tests/test_outlook_taskpane.py: a new person at a known company, the sender's display
name, overdue tasks, template previews, what a new task or note shows, search, errors in
words with "Try again", Cancel on every form, and Office's dark theme; and the pictures
of the pane in docs/screenshots/ that docs/add-ins.md shows."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from tests.fakes.servers import serve
from tests.helpers import create_company, create_contact, create_lead, email_json
from tests.test_outlook_taskpane import ARTIFACTS, OFFICE_MOCK, item, wait_for_replies

Page = Any

UNAVAILABLE = (
    "The records are unavailable right now; nothing was saved. Try again in a few seconds."
)
DARK_THEME = {
    "isDarkTheme": True,
    "bodyBackgroundColor": "#1f1f1f",
    "bodyForegroundColor": "#ffffff",
    "controlBackgroundColor": "#2b2b2b",
    "controlForegroundColor": "#ffffff",
}
LIGHT_THEME = {
    "isDarkTheme": False,
    "bodyBackgroundColor": "#ffffff",
    "bodyForegroundColor": "#242424",
    "controlBackgroundColor": "#ffffff",
    "controlForegroundColor": "#242424",
}


@pytest.fixture
def open_pane(app: Any, caller: Any, browser: Any) -> Iterator[Callable[..., Page]]:
    """Opens the pane on `message` (item() by default); `theme`: Office's officeTheme,
    `scheme`: the system's colour scheme. One browser context a call."""
    contexts: list[Any] = []
    with serve(app) as base:

        def open_on(
            message: dict[str, Any] | None = None,
            theme: dict[str, Any] | None = None,
            scheme: str = "light",
            route: Callable[[Page], None] | None = None,
        ) -> Page:
            context = browser.new_context(
                viewport={"width": 320, "height": 1000}, color_scheme=scheme
            )
            contexts.append(context)
            page = context.new_page()
            page.route(
                "https://appsforoffice.microsoft.com/**",
                lambda r: r.fulfill(
                    status=200, content_type="application/javascript", body="/* mocked */"
                ),
            )
            if route is not None:
                route(page)
            config = {
                "apiKey": caller.key,
                "item": message if message is not None else item(),
                "oldClient": False,
                "naa": False,
                "officeTheme": theme,
            }
            page.add_init_script(f"window.__officeConfig = {json.dumps(config)};")
            page.add_init_script(OFFICE_MOCK)
            page.goto(base + "/static/outlook/taskpane.html")
            return page

        yield open_on
        for context in contexts:
            context.close()


def requests_of(page: Page, sent: list[tuple[str, str]]) -> None:
    """Records in `sent` (method, path and query) every API request the pane sends from now
    on."""
    page.on(
        "request",
        lambda request: (
            sent.append((request.method, unquote(request.url.split("/api/v1", 1)[-1])))
            if "/api/v1/" in request.url
            else None
        ),
    )


def writes(sent: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(method, path) for method, path in sent if method in ("POST", "PATCH", "DELETE")]


def sender(name: str, address: str) -> dict[str, Any]:
    return item(**{"from": {"displayName": name, "emailAddress": address}})


def section(page: Page, title: str) -> Any:
    return page.locator("section").filter(has=page.get_by_role("heading", name=title))


# 1. A new person at a known company -----------------------------------------------------


def test_a_new_person_at_a_known_company_gets_create_contact(open_pane, caller) -> None:
    globex = create_company(caller)
    page_requests: list[tuple[str, str]] = []
    message = sender("Marge Bouvier", "marge@globex.test")
    message["cc"] = [{"displayName": "Homer", "emailAddress": "homer@globex.test"}]
    page = open_pane(message, route=lambda page: requests_of(page, page_requests))
    page.get_by_role("heading", name="In this conversation").wait_for()
    # One lookup for everyone on the message, each with the name Outlook shows.
    lookups = [path for method, path in page_requests if path.startswith("/lookup")]
    assert len(lookups) == 1
    asked = parse_qs(urlsplit(lookups[0]).query)["email"]
    assert asked == ['"Marge Bouvier" <marge@globex.test>', '"Homer" <homer@globex.test>']

    page.get_by_role("button", name="marge@globex.test").click()
    page.get_by_role("heading", name="Globex").wait_for()
    page.get_by_role("button", name="Create contact").click()
    form = page.get_by_role("form", name="Create contact")
    assert form.get_by_label("Name").input_value() == "Marge Bouvier"
    assert form.get_by_label("Email").input_value() == "marge@globex.test"
    assert form.get_by_text("Company: Globex").is_visible()
    form.get_by_role("button", name="Create contact").click()
    page.get_by_role("heading", name="In this conversation").wait_for()
    [marge] = caller.get("/api/v1/lookup?email=marge@globex.test").json["results"]
    assert marge["contact"]["name"] == "Marge Bouvier"
    assert marge["company"]["id"] == globex["id"]


# 2. The sender's display name -----------------------------------------------------------


def test_an_unknown_sender_is_proposed_by_the_name_they_give(open_pane, caller) -> None:
    page = open_pane(sender("Bob Smith", "bobsmith1987@gmail.com"))
    page.get_by_role("heading", name="Not in your records").wait_for()
    form = page.get_by_role("form", name="Create contact")
    assert form.get_by_label("Name").input_value() == "Bob Smith"
    form.get_by_role("button", name="Create contact").click()
    page.get_by_role("heading", name="Bob Smith").wait_for()
    [bob] = caller.get("/api/v1/lookup?email=bobsmith1987@gmail.com").json["results"]
    assert bob["contact"]["name"] == "Bob Smith"


# 3. Tasks: overdue, Done and Undo; leads open their card --------------------------------


def test_overdue_tasks_are_marked_and_done_can_be_undone(open_pane, caller) -> None:
    hank = create_contact(caller)
    record = {"type": "contact", "id": hank["id"]}
    for title, due in (("Send the quote", "2020-01-02"), ("Call back", "2099-01-01")):
        response = caller.post(
            "/api/v1/tasks", json={"title": title, "due_date": due, "record": record}
        )
        assert response.status_code == 201, response.json
    lead = create_lead(caller, contact_id=hank["id"], title="50 seats")
    page = open_pane()
    tasks = section(page, "Open tasks")
    tasks.wait_for()
    late = tasks.locator("li", has_text="Send the quote")
    assert late.locator(".overdue-label").inner_text() == "Overdue"
    assert "late" in (late.locator(".sub").get_attribute("class") or "")
    assert tasks.locator("li", has_text="Call back").locator(".overdue-label").count() == 0

    # Done is a button of its own (the title is no button), and Undo brings it back.
    assert tasks.get_by_role("button", name="Send the quote", exact=True).count() == 0
    page.get_by_role("button", name="Done: Send the quote").click()
    page.get_by_role("button", name="Undo").wait_for()
    assert tasks.locator("li", has_text="Send the quote").count() == 0
    page.get_by_role("button", name="Undo").click()
    tasks.locator("li", has_text="Send the quote").locator(".overdue-label").wait_for()
    [task] = [
        t
        for t in caller.get(f"/api/v1/contacts/{hank['id']}").json["tasks"]
        if t["title"] == "Send the quote"
    ]
    assert task["done"] is False

    # A lead on the card opens its own card.
    section(page, "Open leads").get_by_role("button", name="50 seats").click()
    page.get_by_role("heading", name="50 seats").wait_for()
    assert page.get_by_text(f"Lead · {hank['name']}").is_visible()
    assert lead["id"]


# 4 and 5. Templates: subjects filled for the record, a preview before the reply --------


def test_the_template_picker_shows_filled_subjects_and_a_preview(open_pane, caller) -> None:
    create_company(caller)
    hank = create_contact(caller)
    caller.post(
        "/api/v1/templates",
        json={
            "name": "Quote",
            "subject": "Your quote, {{ contact.first_name }}",
            "body_html": "<p>Dear {{ contact.first_name }},</p><p>here is the quote for "
            "{{ company.name }}.</p>",
        },
    )
    sent: list[tuple[str, str]] = []
    page = open_pane(route=lambda page: requests_of(page, sent))
    page.get_by_role("heading", name="Hank Scorpio").wait_for()
    # The card costs no template request: the previews come when the picker opens.
    assert not [path for _method, path in sent if path.startswith("/templates")]

    page.get_by_role("button", name="Reply with template").click()
    picker = page.get_by_role("region", name="Reply with a template")
    picker.get_by_text("Your quote, Hank").wait_for()
    assert "{{" not in picker.inner_text()
    assert [path for _method, path in sent if path.startswith("/templates")] == [
        f"/templates?record=contact:{hank['id']}"
    ]

    picker.get_by_role("button", name="Quote").click()
    preview = page.get_by_role("region", name="Template preview")
    preview.get_by_text("Subject: Your quote, Hank").wait_for()
    assert "Dear Hank, here is the quote for Globex." in preview.inner_text()
    assert page.evaluate("window.__replies.length") == 0  # nothing opened yet
    preview.get_by_role("button", name="Open reply").click()
    wait_for_replies(page)
    assert "here is the quote for Globex" in page.evaluate("window.__replies[0].htmlBody")


# 6. A new task or note is on the card answered -------------------------------------------


def test_a_new_task_and_a_new_note_show_on_the_card(open_pane, caller) -> None:
    create_contact(caller)
    page = open_pane()
    page.get_by_role("heading", name="Hank Scorpio").wait_for()
    page.get_by_role("button", name="Create task").click()
    form = page.get_by_role("form", name="Create task")
    form.get_by_label("Title").fill("Send the contract")
    form.get_by_label("Due").fill("2099-03-01")
    form.get_by_role("button", name="Create task").click()
    section(page, "Open tasks").get_by_text("Send the contract").wait_for()
    assert section(page, "Open tasks").get_by_text("Due 2099-03-01").is_visible()

    page.get_by_role("button", name="Add note").click()
    form = page.get_by_role("form", name="Add note")
    form.get_by_label("Note").fill("Prefers calls after 3pm")
    form.get_by_role("button", name="Add note").click()
    section(page, "Recent activity").get_by_text("Prefers calls after 3pm").wait_for()


# 7. Search -------------------------------------------------------------------------------


def test_search_says_who_is_who_opens_cards_and_goes_back(open_pane, caller) -> None:
    create_company(caller)
    create_contact(caller)
    create_contact(caller, "Ana Lima", ["ana@globex.test"], job_title="CFO")
    page = open_pane()
    page.get_by_role("heading", name="Hank Scorpio").wait_for()
    page.get_by_label("Search records").fill("Ana")
    page.get_by_label("Search records").press("Enter")
    page.get_by_role("heading", name="Search").wait_for()
    assert page.get_by_text("CFO at Globex · ana@globex.test").is_visible()

    page.get_by_role("button", name="Ana Lima").click()
    page.get_by_role("heading", name="Ana Lima").wait_for()
    page.get_by_role("button", name="‹ Search results").click()
    page.get_by_role("heading", name="Search").wait_for()
    # "‹ Back": the card the search was made from.
    page.get_by_role("button", name="‹ Back").click()
    page.get_by_role("heading", name="Hank Scorpio").wait_for()


def test_an_empty_search_offers_create_contact(open_pane, caller) -> None:
    create_contact(caller)
    page = open_pane()
    page.get_by_role("heading", name="Hank Scorpio").wait_for()
    search = page.get_by_label("Search records")
    search.fill("zed@zulu.test")
    search.press("Enter")
    page.get_by_text("Nobody in your records matches “zed@zulu.test”.").wait_for()
    page.get_by_role("button", name="Create contact").click()
    form = page.get_by_role("form", name="Create contact")
    assert form.get_by_label("Email").input_value() == "zed@zulu.test"
    form.get_by_role("button", name="Cancel").click()
    assert page.get_by_role("form", name="Create contact").count() == 0

    search.fill("Zed Zulu")
    search.press("Enter")
    page.get_by_text("Nobody in your records matches “Zed Zulu”.").wait_for()
    page.get_by_role("button", name="Create contact").click()
    form = page.get_by_role("form", name="Create contact")
    assert form.get_by_label("Name").input_value() == "Zed Zulu"
    form.get_by_label("Email").fill("zed@zulu.test")
    form.get_by_role("button", name="Create contact").click()
    page.get_by_role("heading", name="Zed Zulu").wait_for()
    [zed] = caller.get("/api/v1/lookup?email=zed@zulu.test").json["results"]
    assert zed["contact"]["name"] == "Zed Zulu"


# 8. Errors in words, with "Try again" ---------------------------------------------------


def test_an_outage_without_a_message_is_said_in_words(open_pane, caller) -> None:
    create_contact(caller)
    failures = {"left": 1}

    def proxy_503(page: Page) -> None:
        def answer(route: Any) -> None:
            if failures["left"]:
                failures["left"] -= 1
                # A proxy's page: no JSON message of the connector's.
                return route.fulfill(status=503, content_type="text/html", body="<h1>503</h1>")
            return route.fallback()

        page.route("**/api/v1/lookup?*", answer)

    page = open_pane(route=proxy_503)
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert alert.inner_text() == UNAVAILABLE
    assert "answered" not in page.locator("main").inner_text()
    page.get_by_role("button", name="Try again").click()
    page.get_by_role("heading", name="Hank Scorpio").wait_for()


def test_an_unreachable_connector_is_said_in_words(open_pane, caller) -> None:
    create_contact(caller)
    failures = {"left": 1}

    def offline(page: Page) -> None:
        def answer(route: Any) -> None:
            if failures["left"]:
                failures["left"] -= 1
                return route.abort("internetdisconnected")
            return route.fallback()

        page.route("**/api/v1/lookup?*", answer)

    page = open_pane(route=offline)
    page.get_by_role("alert").wait_for()
    assert "The connector cannot be reached" in page.get_by_role("alert").inner_text()
    page.get_by_role("button", name="Try again").click()
    page.get_by_role("heading", name="Hank Scorpio").wait_for()


def test_a_failed_action_keeps_the_form_and_tries_again(open_pane, caller) -> None:
    hank = create_contact(caller)
    failures = {"left": 1}

    def outage_once(page: Page) -> None:
        def answer(route: Any) -> None:
            if route.request.method == "POST" and failures["left"]:
                failures["left"] -= 1
                return route.fulfill(
                    status=503,
                    content_type="application/json",
                    body=json.dumps({"code": 503, "message": "The database is unavailable now."}),
                )
            return route.fallback()

        page.route("**/api/v1/tasks", answer)

    page = open_pane(route=outage_once)
    page.get_by_role("heading", name="Hank Scorpio").wait_for()
    page.get_by_role("button", name="Create task").click()
    form = page.get_by_role("form", name="Create task")
    form.get_by_label("Title").fill("Send the contract")
    form.get_by_role("button", name="Create task").click()
    # The connector's own words, in the form, what was typed kept.
    form.get_by_role("alert").get_by_text("The database is unavailable now.").wait_for()
    assert form.get_by_label("Title").input_value() == "Send the contract"
    form.get_by_role("button", name="Try again").click()
    section(page, "Open tasks").get_by_text("Send the contract").wait_for()
    tasks = caller.get(f"/api/v1/contacts/{hank['id']}").json["tasks"]
    assert [t["title"] for t in tasks] == ["Send the contract"]


def test_a_failed_one_click_action_offers_try_again(open_pane, caller) -> None:
    hank = create_contact(caller)
    caller.post(
        "/api/v1/tasks",
        json={"title": "Call back", "record": {"type": "contact", "id": hank["id"]}},
    )
    failures = {"left": 1}

    def outage_once(page: Page) -> None:
        def answer(route: Any) -> None:
            if route.request.method == "PATCH" and failures["left"]:
                failures["left"] -= 1
                return route.fulfill(status=502, content_type="text/html", body="Bad gateway")
            return route.fallback()

        page.route("**/api/v1/tasks/*", answer)

    page = open_pane(route=outage_once)
    page.get_by_role("button", name="Done: Call back").click()
    toast = page.locator("#toast")
    toast.get_by_text(UNAVAILABLE).wait_for()
    toast.get_by_role("button", name="Try again").click()
    page.get_by_role("button", name="Undo").wait_for()
    assert caller.get(f"/api/v1/contacts/{hank['id']}").json["tasks"] == []


# 9. Cancel on every form -----------------------------------------------------------------


def test_every_form_cancels_without_writing(open_pane, caller) -> None:
    create_company(caller)
    hank = create_contact(caller)
    create_lead(caller, contact_id=hank["id"], title="50 seats")
    caller.post("/api/v1/templates", json={"name": "Hi", "subject": "Hi", "body_html": "<p>Hi</p>"})
    sent: list[tuple[str, str]] = []
    page = open_pane(route=lambda page: requests_of(page, sent))
    page.get_by_role("heading", name="Hank Scorpio").wait_for()
    opened = {
        "Log email": ("form", "Log email"),
        "Create lead": ("form", "Create lead"),
        "Create ticket": ("form", "Create ticket"),
        "Create task": ("form", "Create task"),
        "Add note": ("form", "Add note"),
        "Edit contact": ("form", "Edit contact"),
        "Reply with template": ("region", "Reply with a template"),
    }
    for button, (role, name) in opened.items():
        page.get_by_role("button", name=button, exact=True).first.click()
        form = page.get_by_role(role, name=name)
        form.wait_for()
        form.get_by_role("button", name="Cancel").click()
        assert form.count() == 0, button

    # Choosing a template: its preview cancels too.
    page.get_by_role("button", name="Reply with template").click()
    page.get_by_role("button", name="Preview Hi").click()
    preview = page.get_by_role("region", name="Template preview")
    preview.get_by_role("button", name="Cancel").click()
    assert preview.count() == 0

    # Lost needs a reason: Cancel puts the stage back.
    page.get_by_label("Stage of 50 seats").select_option("lost")
    lost = page.get_by_role("form", name="Why 50 seats was lost")
    lost.get_by_role("button", name="Cancel").click()
    assert lost.count() == 0
    assert page.get_by_label("Stage of 50 seats").input_value() == "new"

    # Nothing of it was written (the template was rendered for its preview: no write).
    assert [w for w in writes(sent) if "/render" not in w[1]] == []


def test_create_contact_cancels_on_a_company_card_and_for_an_unknown_sender(
    open_pane, caller
) -> None:
    create_company(caller)
    sent: list[tuple[str, str]] = []
    page = open_pane(
        sender("Marge Bouvier", "marge@globex.test"),
        route=lambda page: requests_of(page, sent),
    )
    page.get_by_role("heading", name="Globex").wait_for()
    page.get_by_role("button", name="Create contact").click()
    page.get_by_role("form", name="Create contact").get_by_role("button", name="Cancel").click()
    assert page.get_by_role("form", name="Create contact").count() == 0

    other = open_pane(sender("Bob Smith", "bob@initech.test"))
    other.get_by_role("heading", name="Not in your records").wait_for()
    other.get_by_role("form", name="Create contact").get_by_role("button", name="Cancel").click()
    assert other.get_by_role("form", name="Create contact").count() == 0
    # The way to create them stays.
    other.get_by_role("button", name="Create contact").click()
    other.get_by_role("form", name="Create contact").wait_for()
    assert writes(sent) == []


# 10. Dark mode, following Office's theme -------------------------------------------------


def colours(page: Page) -> tuple[str | None, str]:
    page.get_by_role("heading").first.wait_for()
    theme = page.evaluate("() => document.documentElement.getAttribute('data-theme')")
    background = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    return theme, background


def test_the_pane_follows_office_dark_theme(open_pane, caller) -> None:
    create_contact(caller)
    page = open_pane(theme=DARK_THEME)
    assert colours(page) == ("dark", "rgb(31, 31, 31)")
    text = page.evaluate("() => getComputedStyle(document.querySelector('h1')).color")
    assert text == "rgb(255, 255, 255)"
    # Office switches to light while the pane is open.
    page.evaluate(
        "(theme) => window.__themeChanged.forEach((handler) => handler({ officeTheme: theme }))",
        LIGHT_THEME,
    )
    assert colours(page) == ("light", "rgb(255, 255, 255)")


def test_office_light_theme_wins_over_a_dark_system(open_pane, caller) -> None:
    create_contact(caller)
    assert colours(open_pane(theme=LIGHT_THEME, scheme="dark")) == ("light", "rgb(255, 255, 255)")


def test_without_an_office_theme_the_system_scheme_decides(open_pane, caller) -> None:
    create_contact(caller)
    assert colours(open_pane(scheme="dark")) == (None, "rgb(31, 31, 31)")
    assert colours(open_pane(scheme="light")) == (None, "rgb(255, 255, 255)")


# 11. Screenshots of the pane, for docs/add-ins.md ---------------------------------------

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
# The browser's "now" and every time the service stamps (history, notes) are fixed, so that
# the pictures come out the same run after run: an admin's page should not change for a clock.
FIXED_NOW = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.UTC)
STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})?")


def fixed_times(page: Page) -> None:
    page.clock.set_fixed_time(FIXED_NOW)

    def answer(route: Any) -> None:
        if route.request.method != "GET":
            return route.fallback()
        response = route.fetch()
        body = STAMP.sub("2026-11-23T14:30:00+00:00", response.text())
        return route.fulfill(response=response, body=body)

    page.route("**/api/v1/**", answer)


def people_for_the_pictures(caller: Any) -> None:
    """Fixed names and dates: the card of Hank Scorpio with a lead, a ticket, tasks (one
    overdue on FIXED_NOW), a logged email, a note and his history."""
    create_company(caller)
    hank = create_contact(caller, "Hank Scorpio", ["hank@globex.test"], job_title="CEO")
    record = {"type": "contact", "id": hank["id"]}
    caller.patch(
        f"/api/v1/contacts/{hank['id']}",
        json={"phone": "+1 555 0100", "job_title": "Chief Executive"},
        headers={"If-Match": '"1"'},
    )
    lead = create_lead(caller, contact_id=hank["id"], title="50 seats for Globex")
    caller.patch(
        f"/api/v1/leads/{lead['id']}",
        json={"stage": "qualified", "expected_revenue": "12000"},
        headers={"If-Match": '"1"'},
    )
    response = caller.post(
        "/api/v1/tickets",
        json={"subject": "Invoice 1042 is wrong", "priority": "high", "contact_id": hank["id"]},
    )
    assert response.status_code == 201, response.json
    for title, due in (("Send the quote", "2026-11-20"), ("Call back about seats", "2026-12-01")):
        response = caller.post(
            "/api/v1/tasks", json={"title": title, "due_date": due, "record": record}
        )
        assert response.status_code == 201, response.json
    response = caller.post("/api/v1/emails", json=email_json([record]))
    assert response.status_code in (200, 201), response.json
    response = caller.post(
        "/api/v1/notes", json={"body": "Prefers calls after 3pm", "records": [record]}
    )
    assert response.status_code == 201, response.json


def shoot(page: Page, name: str, backend: str) -> None:
    # Written by one backend's run (the same pictures either way); the other keeps its own
    # under test-artifacts/, for a look when something differs.
    target = SCREENSHOTS if backend == "sqlite" else ARTIFACTS / "screenshots"
    target.mkdir(parents=True, exist_ok=True)
    page.locator("#toast").evaluate("(toast) => { toast.hidden = true; }")
    page.screenshot(path=str(target / f"{name}.png"), full_page=True, animations="disabled")


@pytest.mark.parametrize("shade", ["light", "dark"])
def test_screenshots_of_the_pane(open_pane, caller, backend, shade) -> None:
    """(Re)writes docs/screenshots/*.png: a person's card, an unknown sender, a form. The
    bytes may differ from the committed ones (fonts, Chromium): that fails nothing."""
    people_for_the_pictures(caller)
    theme = DARK_THEME if shade == "dark" else LIGHT_THEME

    page = open_pane(item(), theme=theme, route=fixed_times)
    page.get_by_role("heading", name="Hank Scorpio").wait_for()
    section(page, "History").wait_for()
    section(page, "Followers").wait_for()
    # The followers come by a request of their own: the picture waits for every answer,
    # or it catches the card before its last section moved the rest down.
    page.wait_for_load_state("networkidle")
    assert page.locator(".overdue-label").count() == 1
    shoot(page, f"person-card-{shade}", backend)

    page.get_by_role("button", name="Create task").click()
    form = page.get_by_role("form", name="Create task")
    form.get_by_label("Title").fill("Send the signed contract")
    form.get_by_label("Due").fill("2026-11-27")
    page.evaluate("() => window.scrollTo(0, 0)")
    shoot(page, f"create-task-{shade}", backend)

    stranger = open_pane(
        sender("Bob Smith", "bobsmith1987@gmail.com"), theme=theme, route=fixed_times
    )
    stranger.get_by_role("heading", name="Not in your records").wait_for()
    assert stranger.get_by_label("Name").input_value() == "Bob Smith"
    shoot(stranger, f"unknown-sender-{shade}", backend)


# An expired "Open in the connector" link, in a browser -----------------------------------


def test_an_expired_record_link_shows_a_page_in_words(app, caller, browser) -> None:
    from connector.records.models import RecordType
    from connector.records.refs import RecordRef
    from connector.web.record_links import LINK_MAX_AGE_SECONDS, record_link

    hank = create_contact(caller)
    me = caller.get("/api/v1/me").json
    signed_at = time.time() - LINK_MAX_AGE_SECONDS - 24 * 3600  # 8 days ago
    with serve(app) as base:
        with mock.patch("itsdangerous.timed.time.time", return_value=signed_at):
            link = record_link(
                base, app.config["SECRET_KEY"], me["id"], RecordRef(RecordType.CONTACT, hank["id"])
            )
        context = browser.new_context(viewport={"width": 800, "height": 600})
        try:
            page = context.new_page()
            response = page.goto(link)
            assert response is not None and response.status == 403
            assert response.headers["content-type"].startswith("text/html")
            body = page.locator("body").inner_text()
            assert "This link is not valid any more" in body
            assert '"message"' not in body and "{" not in body
        finally:
            context.close()
