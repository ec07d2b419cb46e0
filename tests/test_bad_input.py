"""Input that cannot be data gets a 400 in the one error shape, never a 5xx, on each backend:
deep JSON, text that cannot be stored, dates that do not fit in UTC, ids that are not whole,
a JSON operation without its body."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Caller
from tests.helpers import create_contact, create_lead, email_json


def assert_400(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, (response.status_code, response.get_data(as_text=True))
    body = response.json
    assert body["code"] == 400
    assert body["status"] == "Bad Request"
    assert body["message"]
    return body


def post_text(caller: Caller, url: str, text: str, method: str = "post") -> Any:
    """Send `text` as the JSON body, byte for byte (escapes such as \\ud800 stay escapes)."""
    send = getattr(caller.client, method)
    return send(url, data=text, content_type="application/json", headers=caller.headers)


JSON_OPERATIONS = [
    ("post", "/api/v1/notes"),
    ("post", "/api/v1/emails"),
    ("post", "/api/v1/contacts"),
    ("post", "/api/v1/leads"),
    ("post", "/api/v1/tasks"),
    ("patch", "/api/v1/tasks/1"),
    ("post", "/api/v1/templates"),
    ("post", "/api/v1/outlook/replies"),
]


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_json_is_a_400(caller: Caller, depth: int) -> None:
    create_contact(caller)
    caller.post("/api/v1/tasks", json={"title": "Call back"})
    bodies = [
        "[" * depth + "]" * depth,
        '{"body": ' + '{"a": ' * depth + "1" + "}" * depth + "}",
    ]
    for method, url in JSON_OPERATIONS:
        for text in bodies:
            body = assert_400(post_text(caller, url, text, method))
            assert "nested deeper than" in body["message"], (url, body)


def test_nesting_within_reason_is_read(caller: Caller) -> None:
    """The depth bound is far above any payload of ours: a 40-deep value is only refused
    by the schema (not a string), like any wrong type."""
    nested = "[" * 40 + "]" * 40
    text = '{"body": ' + nested + ', "records": [{"type": "contact", "id": 1}]}'
    body = assert_400(post_text(caller, "/api/v1/notes", text))
    assert body["errors"]["json"]["body"] == ["Not a valid string."]


def test_a_lone_surrogate_is_a_400_naming_the_field(caller: Caller) -> None:
    contact = create_contact(caller)
    record = f'{{"type": "contact", "id": {contact["id"]}}}'
    body = assert_400(
        post_text(caller, "/api/v1/notes", '{"body": "a\\ud800b", "records": [' + record + "]}")
    )
    assert list(body["errors"]["json"]) == ["body"]
    assert "surrogate" in body["errors"]["json"]["body"][0]
    # A low surrogate alone, deep in a list: the path names it.
    text = '{"body": "ok", "records": [' + record + ', {"type": "lead\\udc00", "id": 1}]}'
    body = assert_400(post_text(caller, "/api/v1/notes", text))
    assert "surrogate" in body["errors"]["json"]["records"]["1"]["type"][0]
    # In a key, and in every other JSON operation.
    assert_400(post_text(caller, "/api/v1/notes", '{"\\ud800": 1}'))
    for method, url in JSON_OPERATIONS:
        assert_400(post_text(caller, url, '{"title": "\\udfff", "body": "\\udfff"}', method))
    # A well-formed pair is one character, and is kept.
    note = post_text(
        caller, "/api/v1/notes", '{"body": "smile \\ud83d\\ude00", "records": [' + record + "]}"
    )
    assert note.status_code == 201, note.json
    card = caller.get(f"/api/v1/contacts/{contact['id']}").json
    assert card["activities"][0]["snippet"] == "smile \N{GRINNING FACE}"


def test_a_nul_character_is_a_400_in_a_body_and_in_a_query(caller: Caller) -> None:
    body = assert_400(caller.post("/api/v1/companies", json={"name": "Glo\x00bex"}))
    assert "NUL" in body["errors"]["json"]["name"][0]
    body = assert_400(caller.get("/api/v1/search?q=ab%00cd"))
    assert "NUL" in body["errors"]["query"]["q"][0]
    assert_400(caller.get("/api/v1/emails/logged?message_id=%3Cm%00%40x%3E"))
    assert caller.get("/api/v1/search?q=abcd").status_code == 200


def test_text_that_is_not_json_is_a_400(caller: Caller) -> None:
    for text in ("{", '{"body": "a"', "\xff\xfe", "[1, 2,]", "NaN-ish"):
        body = assert_400(post_text(caller, "/api/v1/notes", text))
        assert body["message"].startswith("The body is not valid JSON")
    body = assert_400(post_text(caller, "/api/v1/emails", '{"from": '))
    assert body["message"].startswith("The body is not valid JSON")


def test_a_number_python_will_not_read_is_a_400_everywhere(caller: Caller) -> None:
    # Valid JSON, but past Python's 4,300-digit limit for turning text into an int.
    huge = "9" * 5_000
    for method, url in JSON_OPERATIONS:
        body = assert_400(post_text(caller, url, f'{{"company_id": {huge}}}', method))
        assert body["message"].startswith("The body is not valid JSON"), (url, body)


@pytest.mark.parametrize("date", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+14:00"])
def test_an_email_date_outside_utc_years_is_a_400(caller: Caller, date: str) -> None:
    contact = create_contact(caller)
    records = [{"type": "contact", "id": contact["id"]}]
    body = assert_400(caller.post("/api/v1/emails", json=email_json(records, date=date)))
    assert body["errors"]["json"]["date"] == ["Must be a date between years 1 and 9999 in UTC."]
    body = assert_400(caller.post("/api/v1/leads", json={"email": email_json(date=date)}))
    assert "date" in body["errors"]["json"]["email"]
    # The last moments that still fit are logged.
    edge = "9999-12-31T23:59:59+00:00" if date.startswith("9999") else "0001-01-01T14:00:00+14:00"
    logged = caller.post("/api/v1/emails", json=email_json(records, date=edge))
    assert logged.status_code == 201, logged.json


def test_an_id_that_is_not_whole_is_a_400_in_a_body_and_a_404_in_a_path(caller: Caller) -> None:
    contact = create_contact(caller)
    body = assert_400(caller.post("/api/v1/leads", json={"title": "Deal", "contact_id": 1.5}))
    assert body["errors"]["json"]["contact_id"] == ["Not a valid integer."]
    records = [{"type": "contact", "id": contact["id"] + 0.5}]
    body = assert_400(caller.post("/api/v1/notes", json={"body": "Hi", "records": records}))
    assert "id" in body["errors"]["json"]["records"]["0"]
    assert_400(caller.post("/api/v1/leads", json={"title": "Deal", "probability": 50.5}))
    # A whole number written as a float is that number, as JSON Schema says.
    lead = caller.post("/api/v1/leads", json={"title": "Deal", "contact_id": float(contact["id"])})
    assert lead.status_code == 201, lead.json
    assert lead.json["lead"]["contact_id"] == contact["id"]
    for path in ("/api/v1/contacts/1.5", "/api/v1/contacts/0", "/api/v1/activities/1.0"):
        response = caller.get(path)
        assert response.status_code == 404, path
        assert response.json["code"] == 404
    response = caller.patch("/api/v1/tasks/1.5", json={"done": True})
    assert response.status_code == 404


def test_an_id_in_text_follows_the_documented_pattern(caller: Caller) -> None:
    contact = create_contact(caller)
    for value in ("0", "01", "2147483648", "99999999999"):
        body = assert_400(caller.get(f"/api/v1/tasks?assignee={value}"))
        assert "assignee" in body["errors"]["query"], value
    assert caller.get("/api/v1/tasks?assignee=2147483647").status_code == 200
    raw = b"From: hank@globex.test\r\nSubject: Hi\r\n\r\nHello\r\n"
    for value in ("contact:0", "contact:2147483648", "contact:1.5"):
        response = caller.post(
            f"/api/v1/emails?record={value}", data=raw, content_type="message/rfc822"
        )
        assert_400(response)
    logged = caller.post(
        f"/api/v1/emails?record=contact:{contact['id']}", data=raw, content_type="message/rfc822"
    )
    assert logged.status_code == 201, logged.json


def test_a_json_operation_without_a_body_is_a_400(caller: Caller) -> None:
    caller.post("/api/v1/tasks", json={"title": "Call back"})
    response = caller.client.patch("/api/v1/tasks/1", headers=caller.headers)
    body = assert_400(response)
    assert body["message"] == "The request needs a JSON body (Content-Type: application/json)."
    assert caller.get("/api/v1/tasks").json[0]["done"] is False
    assert_400(caller.client.post("/api/v1/contacts", headers=caller.headers))
    # A body of another type is not a JSON body either.
    text = caller.client.patch(
        "/api/v1/tasks/1", data=json.dumps({"done": True}), headers=caller.headers
    )
    assert_400(text)
    assert caller.patch("/api/v1/tasks/1", json={"done": True}).json["done"] is True


def test_revenue_up_to_what_the_column_holds(caller: Caller) -> None:
    """NUMERIC(14, 2): 10^12 used to pass validation and overflow in PostgreSQL (a 500)."""
    body = assert_400(caller.post("/api/v1/leads", json={"title": "D", "expected_revenue": 1e12}))
    assert "expected_revenue" in body["errors"]["json"]
    lead = create_lead(caller, expected_revenue=999_999_999_999.99)
    assert lead["expected_revenue"] == 999_999_999_999.99


def test_lead_and_ticket_need_a_title_or_an_email(caller: Caller) -> None:
    for url, field in (("/api/v1/leads", "title"), ("/api/v1/tickets", "subject")):
        body = assert_400(caller.post(url, json={}))
        assert field in body["errors"]["json"]["_schema"][0]
        assert caller.post(url, json={field: "From the web form"}).status_code == 201


def test_addresses_and_domains_are_checked_with_the_rest_of_the_input(caller: Caller) -> None:
    assert_400(caller.get("/api/v1/lookup?email="))
    body = assert_400(caller.get("/api/v1/lookup?email=hank&email=%3C%3E"))
    assert body["message"].startswith("Give at least one email address: none of these is one")
    body = assert_400(caller.post("/api/v1/contacts", json={"name": "H", "emails": ["x"]}))
    assert "emails" in body["errors"]["json"]
    body = assert_400(caller.post("/api/v1/companies", json={"name": "G", "domains": ["nodot"]}))
    assert body["errors"]["json"]["domains"]["0"] == ["'nodot' is not a domain."]
    lookup = caller.get("/api/v1/lookup?email=Hank%20%3Chank@globex.test%3E")
    assert lookup.status_code == 200
    assert lookup.json["results"][0]["email"] == "hank@globex.test"
