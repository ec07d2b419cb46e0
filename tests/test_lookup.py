"""Lookup by address, record cards, search, and the lookup cache."""

from __future__ import annotations

from connector.db import session_scope
from connector.records.models import Contact
from tests.helpers import create_company, create_contact, create_lead, email_json


def lookup(caller, *emails: str) -> list[dict]:
    response = caller.get("/api/v1/lookup", query_string=[("email", e) for e in emails])
    assert response.status_code == 200, response.json
    return response.json["results"]


def test_contact_by_any_address_case_insensitive(caller) -> None:
    create_company(caller)
    contact = create_contact(caller, "Hank", ["hank@globex.test", "h.scorpio@globex.test"])
    for address in ("HANK@Globex.TEST", "h.scorpio@globex.test", "Hank <hank@globex.test>"):
        [result] = lookup(caller, address)
        assert result["contact"]["id"] == contact["id"]
        assert result["company"]["name"] == "Globex"
        assert result["proposal"] is None


def test_contact_card_has_open_items_and_recent_activity(caller) -> None:
    contact = create_contact(caller)
    open_lead = create_lead(caller, contact_id=contact["id"], title="Open one")
    create_lead(caller, contact_id=contact["id"], title="Won one", stage="won")
    caller.post("/api/v1/tickets", json={"subject": "Broken", "contact_id": contact["id"]})
    caller.post(
        "/api/v1/tickets", json={"subject": "Done", "contact_id": contact["id"], "status": "closed"}
    )
    caller.post(
        "/api/v1/tasks",
        json={"title": "About the lead", "record": {"type": "lead", "id": open_lead["id"]}},
    )
    for n in range(12):
        caller.post(
            "/api/v1/emails",
            json=email_json(
                [{"type": "contact", "id": contact["id"]}],
                message_id=f"<n{n}@globex.test>",
                date=f"2026-11-{n + 1:02d}T10:00:00+00:00",
                subject=f"Mail {n}",
            ),
        )
    [result] = lookup(caller, "hank@globex.test")
    assert [lead["title"] for lead in result["leads"]] == ["Open one"]
    assert [t["subject"] for t in result["tickets"]] == ["Broken"]
    assert [t["title"] for t in result["tasks"]] == ["About the lead"]
    assert len(result["activities"]) == 10
    assert result["activities"][0]["subject"] == "Mail 11"


def test_unknown_address_falls_back_to_the_company_of_its_domain(caller) -> None:
    company = create_company(caller)
    create_lead(caller, company_id=company["id"], title="Company deal")
    [result] = lookup(caller, "new.person@globex.test")
    assert result["contact"] is None
    assert result["company"]["id"] == company["id"]
    assert [lead["title"] for lead in result["leads"]] == ["Company deal"]
    assert result["proposal"] == {
        "name": "New Person",
        "email": "new.person@globex.test",
        "company": {"id": company["id"], "name": "Globex"},
        "new_company": None,
    }


def test_free_mail_never_names_a_company(caller) -> None:
    create_company(caller, "Google", ["gmail.com"])
    [result] = lookup(caller, "someone@gmail.com")
    assert result["free_mail"] is True
    assert result["company"] is None
    assert result["proposal"]["company"] is None
    assert result["proposal"]["new_company"] is None


def test_unknown_domain_proposes_a_new_company(caller) -> None:
    [result] = lookup(caller, "ceo@acme-labs.test")
    assert result["contact"] is None and result["company"] is None
    assert result["proposal"]["new_company"] == {"name": "Acme Labs", "domain": "acme-labs.test"}


def test_several_addresses_in_one_call(caller) -> None:
    create_contact(caller, "Hank", ["hank@globex.test"])
    results = lookup(caller, "hank@globex.test", "x@nowhere.test", "HANK@globex.test")
    assert [r["email"] for r in results] == ["hank@globex.test", "x@nowhere.test"]
    assert results[0]["contact"]["name"] == "Hank"
    assert results[1]["contact"] is None


def test_lookup_errors(caller, client) -> None:
    assert caller.get("/api/v1/lookup").status_code == 400
    response = caller.get("/api/v1/lookup?email=not-an-address")
    assert response.status_code == 400
    assert "not-an-address" in response.json["message"]
    many = [("email", f"u{n}@x.test") for n in range(51)]
    assert caller.get("/api/v1/lookup", query_string=many).status_code == 400
    assert client.get("/api/v1/lookup?email=a@b.test").status_code == 401


def test_addresses_that_are_none_are_left_out_of_a_lookup(caller) -> None:
    # A message's recipients can hold what is no address here; the others are looked up.
    create_contact(caller)
    query = "email=Mailer-Daemon&email=hank@globex.test&email=bob@intranet&email=%3C%3E"
    response = caller.get(f"/api/v1/lookup?{query}")
    assert response.status_code == 200, response.json
    assert [r["email"] for r in response.json["results"]] == ["hank@globex.test"]
    assert response.json["results"][0]["contact"]["name"] == "Hank Scorpio"


def test_lookup_never_crosses_organizations(caller, make_caller) -> None:
    other = make_caller("Other org", "olga@other.test")
    create_company(other, "Globex", ["globex.test"])
    create_contact(other, "Hank", ["hank@globex.test"])
    [result] = lookup(caller, "hank@globex.test")
    assert result["contact"] is None
    assert result["company"] is None


def test_cache_is_used_and_invalidated_by_writes(app, caller) -> None:
    contact = create_contact(caller, "Hank", ["hank@globex.test"])
    assert lookup(caller, "hank@globex.test")[0]["contact"]["name"] == "Hank"
    # A change behind the service's back is not seen: the answer comes from the cache...
    with app.extensions["connector.engine"].begin() as connection:
        connection.execute(Contact.__table__.update().values(name="Changed behind"))
    assert lookup(caller, "hank@globex.test")[0]["contact"]["name"] == "Hank"
    # ...and any write through the service invalidates it.
    create_lead(caller, contact_id=contact["id"], title="New lead")
    [result] = lookup(caller, "hank@globex.test")
    assert result["contact"]["name"] == "Changed behind"
    assert [lead["title"] for lead in result["leads"]] == ["New lead"]


def test_logging_an_email_invalidates_the_lookup(caller) -> None:
    contact = create_contact(caller, "Hank", ["hank@globex.test"])
    assert lookup(caller, "hank@globex.test")[0]["activities"] == []
    caller.post("/api/v1/emails", json=email_json([{"type": "contact", "id": contact["id"]}]))
    assert len(lookup(caller, "hank@globex.test")[0]["activities"]) == 1


def test_a_write_in_a_service_session_invalidates(app, caller) -> None:
    create_contact(caller, "Hank", ["hank@globex.test"])
    lookup(caller, "hank@globex.test")
    with session_scope(app) as session:
        session.query(Contact).one().name = "Renamed"
    assert lookup(caller, "hank@globex.test")[0]["contact"]["name"] == "Renamed"


def test_search_across_types_paginated(caller) -> None:
    create_company(caller, "Globex", ["globex.test"])
    create_contact(caller, "Hank Scorpio", ["hank@globex.test"])
    create_lead(caller, title="Globex renewal")
    caller.post("/api/v1/tickets", json={"subject": "Globex login fails"})
    response = caller.get("/api/v1/search?q=GLOBEX")
    assert response.status_code == 200
    body = response.json
    assert body["total"] == 4
    assert {r["type"] for r in body["results"]} == {"company", "contact", "lead", "ticket"}
    page = caller.get("/api/v1/search?q=globex&per_page=3&page=2").json
    assert page["total"] == 4 and len(page["results"]) == 1
    only = caller.get("/api/v1/search?q=globex&type=lead&type=ticket").json
    assert {r["type"] for r in only["results"]} == {"lead", "ticket"}


def test_search_treats_wildcards_literally(caller) -> None:
    create_contact(caller, "Hank", ["hank@globex.test"])
    assert caller.get("/api/v1/search?q=%25%25").json["total"] == 0
    assert caller.get("/api/v1/search?q=h_nk").json["total"] == 0


def test_search_errors(caller, make_caller) -> None:
    assert caller.get("/api/v1/search").status_code == 400
    assert caller.get("/api/v1/search?q=a").status_code == 400
    assert caller.get("/api/v1/search?q=ab&type=planet").status_code == 400
    assert caller.get("/api/v1/search?q=ab&page=0").status_code == 400
    other = make_caller("Other org", "olga@other.test")
    create_contact(other, "Secret Person", ["secret@other.test"])
    assert caller.get("/api/v1/search?q=secret").json["total"] == 0
