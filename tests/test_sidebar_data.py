"""What both add-ins show, served by the API: a new contact's name from the sender's own
display name, template subjects filled for the record, search results that say who is who."""

from __future__ import annotations

import pytest

from connector.addresses import display_name, name_from_address
from tests.helpers import create_company, create_contact, create_lead


@pytest.mark.parametrize(
    ("address", "name"),
    [
        ("bobsmith1987@gmail.com", "Bobsmith"),
        ("ana.lima@acme.test", "Ana Lima"),
        ("j_doe-2+news@x.test", "J Doe"),
        ("42@x.test", ""),
    ],
)
def test_a_name_guessed_from_an_address_has_no_digits(address: str, name: str) -> None:
    assert name_from_address(address) == name


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("Bob Smith <bobsmith1987@gmail.com>", "Bob Smith"),
        ('"Smith,  Bob" <bob@x.test>', "Smith, Bob"),
        ("bob@x.test", ""),
        ("bob@x.test <bob@x.test>", ""),
    ],
)
def test_display_names(header: str, name: str) -> None:
    assert display_name(header) == name


def test_the_proposal_takes_the_senders_display_name(caller) -> None:
    response = caller.get(
        "/api/v1/lookup", query_string={"email": ["Bob Smith <bobsmith1987@gmail.com>"]}
    )
    [result] = response.json["results"]
    assert result["email"] == "bobsmith1987@gmail.com"
    assert result["proposal"]["name"] == "Bob Smith"
    # Cached by address: another display name, or none, is not mixed up with it.
    [again] = caller.get("/api/v1/lookup?email=bobsmith1987@gmail.com").json["results"]
    assert again["proposal"]["name"] == "Bobsmith"
    [other] = caller.get(
        "/api/v1/lookup", query_string={"email": ["Robert <bobsmith1987@gmail.com>"]}
    ).json["results"]
    assert other["proposal"]["name"] == "Robert"


def test_a_new_person_at_a_known_company_gets_a_proposal(caller) -> None:
    company = create_company(caller)
    [result] = caller.get(
        "/api/v1/lookup", query_string={"email": ["Mia Wong <mia@globex.test>"]}
    ).json["results"]
    assert result["contact"] is None and result["company"]["id"] == company["id"]
    assert result["proposal"]["name"] == "Mia Wong"
    assert result["proposal"]["company"] == {"id": company["id"], "name": "Globex"}


def test_template_subjects_are_filled_for_the_record(caller) -> None:
    contact = create_contact(caller, "Hank Scorpio")
    for name, subject in [
        ("Follow-up", "Following up, {{ contact.first_name }}"),
        ("Broken", "{{ 1 / 0 }}"),
    ]:
        body = {"name": name, "subject": subject, "body_html": "<p>Hi</p>"}
        assert caller.post("/api/v1/templates", json=body).status_code == 201
    listed = caller.get(f"/api/v1/templates?record=contact:{contact['id']}").json
    previews = {t["name"]: t["subject_preview"] for t in listed}
    assert previews == {"Broken": "Broken", "Follow-up": "Following up, Hank"}
    assert {t["subject"] for t in listed} >= {"Following up, {{ contact.first_name }}"}
    blank = {t["name"]: t["subject_preview"] for t in caller.get("/api/v1/templates").json}
    assert blank["Follow-up"] == "Following up,"
    assert caller.get("/api/v1/templates?record=contact:999999").status_code == 404
    assert caller.get("/api/v1/templates?record=nonsense").status_code == 400


def test_search_results_say_who_is_who(caller) -> None:
    create_company(caller)
    create_contact(caller, "Ana Lima", ["ana@globex.test"], job_title="CFO")
    create_contact(caller, "Ana Lima", ["ana.lima@gmail.com"])
    hank = create_contact(caller, "Hank", ["hank@globex.test"])
    create_lead(caller, title="Ana's deal", contact_id=hank["id"])
    results = caller.get("/api/v1/search?q=ana").json["results"]
    described = sorted((r["type"], r["subtitle"], r.get("email")) for r in results)
    assert described == [
        ("contact", "CFO at Globex · ana@globex.test", "ana@globex.test"),
        ("contact", "ana.lima@gmail.com", "ana.lima@gmail.com"),
        ("lead", "New · Hank", None),
    ]
    [company] = caller.get("/api/v1/search?q=globex&type=company").json["results"]
    assert company["subtitle"] == "globex.test"


@pytest.mark.parametrize(
    "address",
    [
        "x" * 65 + "@acme.test",  # over 64 before the @
        "a@" + "b" * 64 + ".test",  # a label over 63
        "a@" + ".".join(["b" * 60] * 5) + ".test",  # over 254 in all
    ],
)
def test_addresses_past_rfc_5321s_limits_are_refused(caller, address: str) -> None:
    response = caller.post("/api/v1/contacts", json={"name": "Long", "emails": [address]})
    assert response.status_code == 400
