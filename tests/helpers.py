"""Small builders for tests: records created through the API, as a client would."""

from __future__ import annotations

from typing import Any


def create_company(caller: Any, name: str = "Globex", domains: list[str] | None = None) -> dict:
    response = caller.post(
        "/api/v1/companies", json={"name": name, "domains": domains or ["globex.test"]}
    )
    assert response.status_code == 201, response.json
    return response.json["company"]


def create_contact(
    caller: Any, name: str = "Hank Scorpio", emails: list[str] | None = None, **fields: Any
) -> dict:
    body = {"name": name, "emails": emails or ["hank@globex.test"], **fields}
    response = caller.post("/api/v1/contacts", json=body)
    assert response.status_code == 201, response.json
    return response.json["contact"]


def create_lead(caller: Any, **fields: Any) -> dict:
    response = caller.post("/api/v1/leads", json={"title": "Big deal", **fields})
    assert response.status_code == 201, response.json
    return response.json["lead"]


def email_json(records: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    body = {
        "message_id": "<m1@globex.test>",
        "subject": "Quote for 50 seats",
        "from": "Hank Scorpio <hank@globex.test>",
        "to": ["Ann <ann@acme.test>"],
        "date": "2026-11-20T10:00:00+00:00",
        "body_text": "Hello,\nwe would like a quote.",
        **fields,
    }
    if records is not None:
        body["records"] = records
    return body


def sign_in(client: Any, user_id: int) -> str:
    """A browser session as Google or Microsoft sign-in leaves it (connector.web.signin),
    with its CSRF token, which this returns for the forms a test sends itself."""
    with client.session_transaction() as session:
        session["user_id"] = user_id
        session["csrf"] = "test-csrf"
    return "test-csrf"
