"""The record page behind a signed link: its history, and its form for a signed-in user of
the record's organization (the link alone only reads)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest

from connector.lookup.view_models import local_time
from tests.fakes.servers import serve
from tests.helpers import create_company, create_contact, create_lead, sign_in


class FormReader(HTMLParser):
    """The fields of the page's form as a browser would send them, and its action."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._select: str | None = None
        self._first_option: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("method") == "post":
            self.action = a["action"]
        elif tag == "input" and "name" in a:
            self.fields[a["name"]] = a.get("value", "")
        elif tag == "select":
            self._select, self._first_option = a["name"], None
        elif tag == "option" and self._select is not None:
            if self._first_option is None:
                self._first_option = a["value"]
                self.fields.setdefault(self._select, a["value"])
            if "selected" in a:
                self.fields[self._select] = a["value"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def read_form(html: str) -> tuple[str | None, dict[str, str]]:
    reader = FormReader()
    reader.feed(html)
    return reader.action, reader.fields


def link_to(caller, record_type: str, record_id: int) -> str:
    response = caller.post("/api/v1/record-links", json={"type": record_type, "id": record_id})
    assert response.status_code == 201
    parts = urlsplit(response.json["url"])
    return f"{parts.path}?{parts.query}"


def card(caller, plural: str, record_id: int) -> dict[str, Any]:
    response = caller.get(f"/api/v1/{plural}/{record_id}")
    assert response.status_code == 200
    return response.json


def submit(client, link: str, **changes: str) -> Any:
    """Open the page, change the form's fields as a person would, and send it."""
    page = client.get(link)
    assert page.status_code == 200
    action, fields = read_form(page.get_data(as_text=True))
    assert action is not None, "the page has a form"
    return client.post(action, data={**fields, **changes})


def text_of(response: Any) -> str:
    return response.get_data(as_text=True)


def plain(html: str) -> str:
    """The page's text, tags dropped (a history line holds a <time> element)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


def test_the_link_alone_shows_the_history_read_only(app, caller) -> None:
    lead = create_lead(caller, title="<b>50 seats</b>")
    changed = caller.patch(
        f"/api/v1/leads/{lead['id']}", json={"stage": "qualified"}, headers={"If-Match": '"1"'}
    )
    assert changed.status_code == 200
    [entry] = changed.json["history"]
    link = link_to(caller, "lead", lead["id"])

    response = app.test_client().get(link)  # a browser with no session
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    html = text_of(response)
    assert "&lt;b&gt;50 seats&lt;/b&gt;" in html and "<b>50 seats" not in html
    utc = local_time(entry["at"], ZoneInfo("UTC")) + " UTC"
    assert f'<time datetime="{entry["at"]}" data-local>{utc}</time>' in html
    assert f"stage: new → qualified, by ann, {utc}" in plain(html)
    assert 'src="/static/record.js"' in html
    # Read-only: no form, and a way to sign in.
    assert read_form(html) == (None, {})
    # Signing in comes back to this page, link and all.
    assert re.search(
        r'<a href="/connect\?next=/records/lead/\d+\?t%3D[^"]+">Sign in to edit</a>', html
    )


EDITS = {
    "contact": (
        "contacts",
        {
            "name": "Hank S.",
            "phone": "+1 555 0100",
            "job_title": "CEO",
            "emails": "hank@globex.test, h.scorpio@globex.test",
        },
        "name: Hank Scorpio → Hank S.",
    ),
    "company": (
        "companies",
        {
            "name": "Globex Corp",
            "website": "https://globex.test",
            "phone": "+1 555 0199",
            "domains": "globex.test, globex.example",
        },
        "name: Globex → Globex Corp",
    ),
    "lead": (
        "leads",
        {
            "title": "60 seats",
            "stage": "won",
            "expected_revenue": "1200.50",
            "probability": "90",
            "close_date": "2026-01-31",
        },
        "stage: new → won",
    ),
    "ticket": (
        "tickets",
        {"subject": "Printer on fire", "status": "open", "priority": "urgent"},
        "status: new → open",
    ),
}


def make_record(caller, record_type: str) -> dict[str, Any]:
    if record_type == "contact":
        return create_contact(caller)
    if record_type == "company":
        return create_company(caller)
    if record_type == "lead":
        return create_lead(caller)
    response = caller.post("/api/v1/tickets", json={"subject": "Printer jam"})
    assert response.status_code == 201
    return response.json["ticket"]


@pytest.mark.parametrize("record_type", list(EDITS))
def test_a_signed_in_user_changes_each_kind_of_record(
    client, caller, make_caller, record_type
) -> None:
    plural, changes, history = EDITS[record_type]
    colleague = make_caller("Acme", "bea@acme.test")
    record = make_record(caller, record_type)
    link = link_to(caller, record_type, record["id"])
    sign_in(client, caller.user_id)

    response = submit(client, link, owner_id=str(colleague.user_id), **changes)
    assert response.status_code == 303, text_of(response)
    after = client.get(response.headers["Location"])
    assert after.status_code == 200
    html = plain(text_of(after))
    assert "Your changes were saved." in html
    assert f"{history}, by ann," in html
    assert "owner: ann → bea, by ann," in html

    saved = card(caller, plural, record["id"])[record_type]
    assert saved["version"] == record["version"] + 1
    assert saved["owner_id"] == colleague.user_id
    for name, value in changes.items():
        if name in ("emails", "domains"):
            assert saved[name] == value.split(", ")
        elif name == "expected_revenue":
            assert saved[name] == 1200.5
        elif name == "probability":
            assert saved[name] == 90
        else:
            assert saved[name] == value
    # The confirmation is shown once (a reload does not show it again).
    assert "Your changes were saved." not in text_of(client.get(response.headers["Location"]))


def test_only_the_fields_changed_are_sent_and_an_emptied_one_is_cleared(client, caller) -> None:
    contact = create_contact(caller, phone="+1 555 0100", job_title="CEO")
    link = link_to(caller, "contact", contact["id"])
    sign_in(client, caller.user_id)
    assert submit(client, link, phone="").status_code == 303
    saved = card(caller, "contacts", contact["id"])
    assert saved["contact"]["phone"] is None and saved["contact"]["job_title"] == "CEO"
    # One change, one history entry: the fields left alone were not written.
    assert [entry["field"] for entry in saved["history"]] == ["phone"]
    # Saving an untouched form writes nothing.
    unchanged = submit(client, link)
    assert unchanged.status_code == 303
    assert "Nothing to save" in text_of(client.get(unchanged.headers["Location"]))
    assert card(caller, "contacts", contact["id"])["contact"]["version"] == 2


def test_lost_without_a_reason_is_refused_and_keeps_what_was_typed(client, caller) -> None:
    lead = create_lead(caller, title="Big deal")
    link = link_to(caller, "lead", lead["id"])
    sign_in(client, caller.user_id)
    response = submit(client, link, stage="lost", title="Renamed deal")
    assert response.status_code == 400
    assert response.headers["Cache-Control"] == "no-store"
    html = text_of(response)
    assert "Say why the lead is lost" in html
    _, fields = read_form(html)
    assert fields["stage"] == "lost" and fields["title"] == "Renamed deal"
    saved = card(caller, "leads", lead["id"])
    assert saved["lead"]["stage"] == "new" and saved["lead"]["title"] == "Big deal"
    assert saved["history"] == []
    # With a reason it goes through, from the re-rendered form.
    again = client.post(link, data={**fields, "lost_reason": "Too expensive"})
    assert again.status_code == 303
    saved = card(caller, "leads", lead["id"])["lead"]
    assert saved["stage"] == "lost" and saved["lost_reason"] == "Too expensive"
    assert saved["title"] == "Renamed deal"


def test_bad_values_and_taken_addresses_are_explained_not_saved(client, caller) -> None:
    contact = create_contact(caller)
    create_contact(caller, "Other", ["other@globex.test"])
    lead = create_lead(caller)
    sign_in(client, caller.user_id)

    bad = submit(client, link_to(caller, "lead", lead["id"]), probability="150", title="")
    assert bad.status_code == 400
    html = text_of(bad)
    assert "Probability (%):" in html and "Title:" in html
    assert read_form(html)[1]["probability"] == "150"
    assert card(caller, "leads", lead["id"])["lead"]["probability"] == 10

    taken = submit(client, link_to(caller, "contact", contact["id"]), emails="other@globex.test")
    assert taken.status_code == 409
    assert read_form(text_of(taken))[1]["emails"] == "other@globex.test"
    assert card(caller, "contacts", contact["id"])["contact"]["emails"] == ["hank@globex.test"]

    not_an_address = submit(client, link_to(caller, "contact", contact["id"]), emails="nope")
    assert not_an_address.status_code == 400
    assert "Email addresses:" in text_of(not_an_address)


def test_a_stale_form_saves_nothing_and_keeps_the_changes(client, caller) -> None:
    contact = create_contact(caller)
    link = link_to(caller, "contact", contact["id"])
    sign_in(client, caller.user_id)
    action, fields = read_form(text_of(client.get(link)))
    # Someone else changes the phone meanwhile.
    meanwhile = caller.patch(f"/api/v1/contacts/{contact['id']}", json={"phone": "+1 555 0142"})
    assert meanwhile.status_code == 200

    stale = client.post(action, data={**fields, "name": "Hank S."})
    assert stale.status_code == 409
    html = text_of(stale)
    assert "Someone changed this record since you opened it; nothing was saved" in html
    saved = card(caller, "contacts", contact["id"])["contact"]
    assert saved["name"] == "Hank Scorpio" and saved["version"] == 2
    _, kept = read_form(html)
    assert kept["name"] == "Hank S."  # what the person typed
    assert kept["phone"] == "+1 555 0142"  # what the other person saved
    assert kept["version"] == "2"
    # Saving again applies the person's change without undoing the other one.
    assert client.post(action, data=kept).status_code == 303
    saved = card(caller, "contacts", contact["id"])["contact"]
    assert saved["name"] == "Hank S." and saved["phone"] == "+1 555 0142"


def test_writes_need_the_session_and_its_csrf_token(app, client, caller) -> None:
    contact = create_contact(caller)
    link = link_to(caller, "contact", contact["id"])
    sign_in(client, caller.user_id)
    action, fields = read_form(text_of(client.get(link)))
    assert action == link

    without_token = {k: v for k, v in fields.items() if k != "csrf"}
    forged = {**fields, "csrf": "forged"}
    for data in (without_token, forged):
        response = client.post(action, data={**data, "name": "Mallory"})
        assert response.status_code == 403
    # The link alone, in a browser with no session, never writes.
    stranger = app.test_client()
    response = stranger.post(action, data={**fields, "name": "Mallory"})
    assert response.status_code == 403
    assert "sign in" in text_of(response).lower()
    saved = card(caller, "contacts", contact["id"])
    assert saved["contact"]["name"] == "Hank Scorpio" and saved["history"] == []


def test_another_organizations_user_reads_with_the_link_and_cannot_write(
    app, caller, make_caller
) -> None:
    contact = create_contact(caller)
    link = link_to(caller, "contact", contact["id"])
    outsider = make_caller("Initech", "olga@initech.test")
    browser = app.test_client()
    sign_in(browser, outsider.user_id)

    page = browser.get(link)
    assert page.status_code == 200
    assert read_form(text_of(page)) == (None, {})
    assert "outside this record's organization" in text_of(page)

    # A form of their own (the session's token), posted at this record: no such record.
    with browser.session_transaction() as session:
        session["csrf"] = "olga-token"
    response = browser.post(link, data={"csrf": "olga-token", "version": "1", "name": "Mallory"})
    assert response.status_code == 404
    assert card(caller, "contacts", contact["id"])["contact"]["name"] == "Hank Scorpio"


def test_times_are_shown_in_the_readers_zone(app, caller, browser) -> None:
    lead = create_lead(caller)
    changed = caller.patch(f"/api/v1/leads/{lead['id']}", json={"stage": "qualified"})
    at = changed.json["history"][0]["at"]
    link = link_to(caller, "lead", lead["id"])
    tokyo = local_time(at, ZoneInfo("Asia/Tokyo"))
    utc = local_time(at, ZoneInfo("UTC")) + " UTC"
    assert tokyo != utc
    with serve(app) as base:
        for script, shown in ((True, tokyo), (False, utc)):
            context = browser.new_context(timezone_id="Asia/Tokyo", java_script_enabled=script)
            context.set_default_timeout(10_000)
            try:
                # The browser asks for a favicon the connector has none of: not a page error.
                context.route("**/favicon.ico", lambda route: route.fulfill(status=204))
                page = context.new_page()
                errors: list[str] = []
                page.on("console", lambda m, errors=errors: errors.append(m.text))
                page.goto(base + link)
                line = page.locator("ul.history li").first
                line.locator(f"time:text-is('{shown}')").wait_for()
                assert line.inner_text() == f"stage: new → qualified, by ann, {shown}"
                if script:
                    assert line.locator("time").get_attribute("data-zone") == "Asia/Tokyo"
                assert errors == []  # no script refused by the page's policy
            finally:
                context.close()
