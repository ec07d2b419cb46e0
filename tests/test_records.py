"""Creating and reading companies, contacts, leads, tickets and tasks."""

from __future__ import annotations

import pytest

from tests.helpers import create_company, create_contact, create_lead, email_json


def test_create_company_and_read_it(caller) -> None:
    company = create_company(caller, "Globex", ["Globex.test", "www.globex-corp.test"])
    assert company["domains"] == ["globex.test", "globex-corp.test"]
    response = caller.get(f"/api/v1/companies/{company['id']}")
    assert response.status_code == 200
    assert response.json["company"]["name"] == "Globex"


def test_company_domain_taken_is_409(caller) -> None:
    create_company(caller, "Globex", ["globex.test"])
    response = caller.post("/api/v1/companies", json={"name": "Other", "domains": ["globex.test"]})
    assert response.status_code == 409
    assert "globex.test" in response.json["message"]


def test_company_invalid_input_is_400(caller) -> None:
    assert caller.post("/api/v1/companies", json={"domains": []}).status_code == 400
    response = caller.post("/api/v1/companies", json={"name": "X", "domains": ["not a domain"]})
    assert response.status_code == 400
    assert response.json["errors"]


def test_contact_gets_the_company_of_its_domain(caller) -> None:
    company = create_company(caller)
    contact = create_contact(caller, "Hank", ["Hank@Globex.test"])
    assert contact["emails"] == ["hank@globex.test"]
    assert contact["company"] == {"id": company["id"], "name": "Globex"}


def test_contact_with_a_new_company(caller) -> None:
    response = caller.post(
        "/api/v1/contacts",
        json={
            "name": "Mia",
            "emails": ["mia@initech.test"],
            "new_company": {"name": "Initech", "domains": ["initech.test"]},
        },
    )
    assert response.status_code == 201
    assert response.json["company"]["name"] == "Initech"
    assert response.json["company"]["domains"] == ["initech.test"]


def test_contact_on_free_mail_gets_no_company(caller) -> None:
    create_company(caller, "Google", ["gmail.com"])
    contact = create_contact(caller, "Joe", ["joe@gmail.com"])
    assert contact["company"] is None


def test_contact_address_taken_is_409(caller) -> None:
    create_contact(caller, "Hank", ["hank@globex.test"])
    response = caller.post("/api/v1/contacts", json={"name": "H2", "emails": ["HANK@globex.test"]})
    assert response.status_code == 409


def test_contact_bad_address_is_400_and_writes_nothing(caller) -> None:
    response = caller.post(
        "/api/v1/contacts",
        json={"name": "X", "emails": ["x@ok.test", "nope"], "new_company": {"name": "Ok"}},
    )
    assert response.status_code == 400
    assert caller.get("/api/v1/search?q=ok").json["total"] == 0


def test_contact_with_another_orgs_company_is_404(caller, make_caller) -> None:
    other = make_caller("Other org", "olga@other.test")
    foreign = create_company(other, "Foreign", ["foreign.test"])
    response = caller.post(
        "/api/v1/contacts", json={"name": "X", "emails": ["x@x.test"], "company_id": foreign["id"]}
    )
    assert response.status_code == 404


def test_records_of_another_org_are_404(caller, make_caller) -> None:
    other = make_caller("Other org", "olga@other.test")
    company = create_company(other, "Foreign", ["foreign.test"])
    contact = create_contact(other, "Fred", ["fred@foreign.test"])
    lead = create_lead(other, contact_id=contact["id"])
    for url in (
        f"/api/v1/companies/{company['id']}",
        f"/api/v1/contacts/{contact['id']}",
        f"/api/v1/leads/{lead['id']}",
    ):
        response = caller.get(url)
        assert response.status_code == 404
        assert "Foreign" not in response.get_data(as_text=True)
        assert "Fred" not in response.get_data(as_text=True)
    assert caller.get("/api/v1/contacts/999999").status_code == 404


def test_lead_from_fields(caller) -> None:
    contact = create_contact(caller)
    lead = create_lead(
        caller,
        contact_id=contact["id"],
        expected_revenue="12500.50",
        probability=40,
        stage="qualified",
    )
    assert lead["expected_revenue"] == 12500.5
    assert lead["stage"] == "qualified"
    assert lead["contact_id"] == contact["id"]


def test_lead_from_an_email_links_sender_and_logs_it(caller) -> None:
    company = create_company(caller)
    response = caller.post("/api/v1/leads", json={"email": email_json()})
    assert response.status_code == 201, response.json
    card = response.json
    assert card["lead"]["title"] == "Quote for 50 seats"
    assert "we would like a quote" in card["lead"]["description"]
    assert card["contact"]["emails"] == ["hank@globex.test"]
    assert card["contact"]["name"] == "Hank Scorpio"
    assert card["company"]["id"] == company["id"]
    assert [a["message_id"] for a in card["activities"]] == ["<m1@globex.test>"]
    contact_card = caller.get(f"/api/v1/contacts/{card['contact']['id']}").json
    assert contact_card["leads"][0]["id"] == card["lead"]["id"]
    assert contact_card["activities"][0]["subject"] == "Quote for 50 seats"


def test_lead_needs_a_title_or_an_email(caller) -> None:
    response = caller.post("/api/v1/leads", json={"description": "x"})
    assert response.status_code == 400
    assert "title" in response.json["message"]


def test_lead_with_invalid_fields_is_400(caller) -> None:
    for body in (
        {"title": "x", "stage": "maybe"},
        {"title": "x", "probability": 101},
        {"title": "x", "expected_revenue": "lots"},
        {"title": ""},
    ):
        response = caller.post("/api/v1/leads", json=body)
        assert response.status_code == 400, body
        assert response.json["errors"]


def test_ticket_from_an_email(caller) -> None:
    response = caller.post(
        "/api/v1/tickets",
        json={"priority": "high", "email": email_json(subject="Export is broken")},
    )
    assert response.status_code == 201, response.json
    assert response.json["ticket"]["subject"] == "Export is broken"
    assert response.json["ticket"]["priority"] == "high"
    assert response.json["ticket"]["status"] == "new"
    assert response.json["contact"]["emails"] == ["hank@globex.test"]
    assert response.json["activities"][0]["subject"] == "Export is broken"


def test_create_with_a_bad_email_writes_nothing(caller) -> None:
    # (A "from" with no address is no longer bad: the email is logged, sender as written.)
    bad = email_json(attachments=[{"filename": "a.pdf", "content_base64": "%%%"}])
    response = caller.post("/api/v1/tickets", json={"email": bad})
    assert response.status_code == 400
    assert caller.get("/api/v1/search?q=export").json["total"] == 0
    assert caller.get("/api/v1/search?q=hank").json["total"] == 0


def test_tasks_create_list_and_complete(caller) -> None:
    contact = create_contact(caller)
    response = caller.post(
        "/api/v1/tasks",
        json={
            "title": "Call back",
            "due_date": "2026-12-01",
            "record": {"type": "contact", "id": contact["id"]},
        },
    )
    assert response.status_code == 201
    task = response.json
    assert task["record"] == {"type": "contact", "id": contact["id"]}
    assert task["assignee_id"] == caller.user_id
    later = caller.post("/api/v1/tasks", json={"title": "Later", "due_date": "2027-01-01"}).json
    listed = caller.get("/api/v1/tasks").json
    assert [t["id"] for t in listed] == [task["id"], later["id"]]
    soon = caller.get("/api/v1/tasks?due_before=2026-12-31").json
    assert [t["id"] for t in soon] == [task["id"]]
    card = caller.get(f"/api/v1/contacts/{contact['id']}").json
    assert [t["title"] for t in card["tasks"]] == ["Call back"]
    done = caller.patch(f"/api/v1/tasks/{task['id']}", json={"done": True})
    assert done.status_code == 200 and done.json["done"] is True
    assert [t["id"] for t in caller.get("/api/v1/tasks").json] == [later["id"]]
    assert caller.get(f"/api/v1/contacts/{contact['id']}").json["tasks"] == []


def test_task_errors(caller, make_caller) -> None:
    other = make_caller("Other org", "olga@other.test")
    foreign = create_contact(other, "Fred", ["fred@foreign.test"])
    response = caller.post(
        "/api/v1/tasks", json={"title": "x", "record": {"type": "contact", "id": foreign["id"]}}
    )
    assert response.status_code == 404
    assert caller.post("/api/v1/tasks", json={"title": "x", "due_date": "soon"}).status_code == 400
    response = caller.post(
        "/api/v1/tasks", json={"title": "x", "record": {"type": "planet", "id": 1}}
    )
    assert response.status_code == 400
    foreign_task = other.post("/api/v1/tasks", json={"title": "theirs"}).json
    assert (
        caller.patch(f"/api/v1/tasks/{foreign_task['id']}", json={"done": True}).status_code == 404
    )
    assert caller.get("/api/v1/tasks?assignee=nobody").status_code == 400


def test_malformed_json_is_400(caller) -> None:
    for url in ("/api/v1/contacts", "/api/v1/leads", "/api/v1/emails", "/api/v1/notes"):
        response = caller.post(url, data="{not json", content_type="application/json")
        assert response.status_code == 400, url
        assert response.json["code"] == 400


def test_record_links(caller, client, make_caller) -> None:
    contact = create_contact(caller, "Hank", ["hank@globex.test"])
    response = caller.post("/api/v1/record-links", json={"type": "contact", "id": contact["id"]})
    assert response.status_code == 201
    url = response.json["url"]
    page = client.get(url.split("127.0.0.1:8000", 1)[1])
    assert page.status_code == 200 and "Hank" in page.get_data(as_text=True)
    other = make_caller("Other org", "olga@other.test")
    assert (
        other.post(
            "/api/v1/record-links", json={"type": "contact", "id": contact["id"]}
        ).status_code
        == 404
    )
    assert caller.post("/api/v1/record-links", json={"type": "x", "id": 1}).status_code == 400


TOO_BIG = 2**70  # no row has such an id; SQLite and int4 columns cannot even hold it


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", f"/api/v1/contacts/{TOO_BIG}", None, 404),
        ("GET", f"/api/v1/tasks?assignee={TOO_BIG}", None, 400),
        ("GET", f"/api/v1/tasks?assignee={2**31}", None, 400),
        ("PATCH", f"/api/v1/tasks/{TOO_BIG}", {"done": True}, 404),
        ("GET", f"/api/v1/activities/{TOO_BIG}", None, 404),
        ("GET", f"/api/v1/attachments/{TOO_BIG}", None, 404),
        ("POST", f"/api/v1/templates/{TOO_BIG}/render", {}, 404),
        ("POST", "/api/v1/leads", {"title": "x", "contact_id": TOO_BIG}, 400),
        (
            "POST",
            "/api/v1/contacts",
            {"name": "x", "emails": ["x@y.test"], "company_id": TOO_BIG},
            400,
        ),
        (
            "POST",
            "/api/v1/tasks",
            {"title": "x", "record": {"type": "contact", "id": TOO_BIG}},
            400,
        ),
        ("POST", "/api/v1/record-links", {"type": "contact", "id": TOO_BIG}, 400),
        ("POST", "/api/v1/outlook/replies", {"message_id": "m", "template_id": TOO_BIG}, 400),
    ],
)
def test_ids_too_large_for_any_row_are_4xx(caller, method, path, body, status) -> None:
    response = caller.client.open(path, method=method, json=body, headers=caller.headers)
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.json["code"] == status
