"""Keeping records current: edit with versions, stages and statuses, history, archive and
restore, purge, merge, and lists, through the API as a client would."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from connector.activities.models import Activity, ActivityLink
from connector.db import session_scope
from connector.lifecycle.purge import parse_age, purge_archived
from connector.orgs.models import Role
from connector.records.models import Contact, ContactEmail, RecordChange
from tests.helpers import create_company, create_contact, create_lead, email_json


def _ticket(caller, **fields) -> dict:
    response = caller.post("/api/v1/tickets", json={"subject": "Printer on fire", **fields})
    assert response.status_code == 201, response.json
    return response.json["ticket"]


# Edit and versions ------------------------------------------------------------------


def test_get_names_the_version_in_its_etag_and_patch_moves_it_on(caller) -> None:
    contact = create_contact(caller, "Hank Scorpoi")
    url = f"/api/v1/contacts/{contact['id']}"
    assert caller.get(url).headers["ETag"] == '"1"'
    response = caller.patch(url, json={"name": "Hank Scorpio"}, headers={"If-Match": '"1"'})
    assert response.status_code == 200, response.json
    assert response.headers["ETag"] == '"2"'
    assert response.json["contact"]["name"] == "Hank Scorpio"
    assert response.json["contact"]["version"] == 2
    assert caller.get(url).json["contact"]["name"] == "Hank Scorpio"


def test_stale_if_match_is_412_and_writes_nothing(caller) -> None:
    lead = create_lead(caller)
    url = f"/api/v1/leads/{lead['id']}"
    assert caller.patch(url, json={"title": "Bigger deal"}).status_code == 200  # no If-Match
    response = caller.patch(
        url, json={"title": "Stale title", "stage": "won"}, headers={"If-Match": '"1"'}
    )
    assert response.status_code == 412
    assert set(response.json) >= {"code", "status", "message"}
    after = caller.get(url).json
    assert after["lead"]["title"] == "Bigger deal"
    assert after["lead"]["stage"] == "new"
    assert [h["field"] for h in after["history"]] == ["title"]


def test_logging_an_email_keeps_the_version(caller) -> None:
    contact = create_contact(caller)
    ref = {"type": "contact", "id": contact["id"]}
    assert caller.post("/api/v1/emails", json=email_json([ref])).status_code in (200, 201)
    assert caller.get(f"/api/v1/contacts/{contact['id']}").headers["ETag"] == '"1"'


def test_patch_validates_as_create_does(caller) -> None:
    contact = create_contact(caller)
    url = f"/api/v1/contacts/{contact['id']}"
    assert caller.patch(url, json={"emails": ["not an address"]}).status_code == 400
    assert caller.patch(url, json={"name": ""}).status_code == 400
    assert caller.patch(url, json={"shoe_size": 44}).status_code == 400
    other = create_contact(caller, "Marge", ["marge@globex.test"])
    taken = caller.patch(url, json={"emails": ["marge@globex.test"]})
    assert taken.status_code == 409
    assert taken.json["errors"]["contact_id"] == other["id"]
    assert caller.get(url).json["contact"]["emails"] == ["hank@globex.test"]


def test_contact_emails_are_replaced_and_looked_up(caller) -> None:
    contact = create_contact(caller)
    url = f"/api/v1/contacts/{contact['id']}"
    response = caller.patch(url, json={"emails": ["h.scorpio@globex.test", "hank@globex.test"]})
    # The address it had stays first (its main one).
    assert response.json["contact"]["emails"] == ["hank@globex.test", "h.scorpio@globex.test"]
    response = caller.patch(url, json={"emails": ["h.scorpio@globex.test"]})
    assert response.json["contact"]["emails"] == ["h.scorpio@globex.test"]
    assert caller.get("/api/v1/lookup?email=hank@globex.test").json["results"][0]["contact"] is None
    found = caller.get("/api/v1/lookup?email=h.scorpio@globex.test").json["results"][0]
    assert found["contact"]["id"] == contact["id"]


def test_company_patch_changes_domains(caller) -> None:
    company = create_company(caller)
    response = caller.patch(
        f"/api/v1/companies/{company['id']}", json={"domains": ["globex.test", "globex.example"]}
    )
    assert response.status_code == 200
    assert response.json["company"]["domains"] == ["globex.test", "globex.example"]


# Stages and statuses ----------------------------------------------------------------


def test_lead_moved_to_qualified_then_won_shows_both_in_its_history(caller) -> None:
    lead = create_lead(caller)
    url = f"/api/v1/leads/{lead['id']}"
    assert caller.patch(url, json={"stage": "qualified"}).status_code == 200
    won = caller.patch(url, json={"stage": "won"}).json
    assert won["lead"]["probability"] == 100
    assert won["lead"]["close_date"] == dt.datetime.now(dt.UTC).date().isoformat()
    stages = [(h["from"], h["to"]) for h in won["history"] if h["field"] == "stage"]
    assert stages == [("qualified", "won"), ("new", "qualified")]
    entry = won["history"][-1]
    assert entry["by"] == {"id": caller.user_id, "name": "ann"}
    assert dt.datetime.fromisoformat(entry["at"]).utcoffset() == dt.timedelta(0)


def test_unknown_stage_or_status_is_400(caller) -> None:
    lead = create_lead(caller)
    response = caller.patch(f"/api/v1/leads/{lead['id']}", json={"stage": "maybe"})
    assert response.status_code == 400
    assert "stage" in response.json["errors"]["json"]
    ticket = _ticket(caller)
    response = caller.patch(f"/api/v1/tickets/{ticket['id']}", json={"status": "done-ish"})
    assert response.status_code == 400


def test_lost_needs_a_reason(caller) -> None:
    lead = create_lead(caller)
    url = f"/api/v1/leads/{lead['id']}"
    refused = caller.patch(url, json={"stage": "lost"})
    assert refused.status_code == 400
    assert "lost_reason" in refused.json["errors"]
    lost = caller.patch(url, json={"stage": "lost", "lost_reason": "Went with Initech"}).json
    assert (lost["lead"]["stage"], lost["lead"]["lost_reason"]) == ("lost", "Went with Initech")
    assert lost["lead"]["probability"] == 0
    reopened = caller.patch(url, json={"stage": "qualified"}).json["lead"]
    assert reopened["lost_reason"] is None
    assert caller.post("/api/v1/leads", json={"title": "X", "stage": "lost"}).status_code == 400


def test_lead_owner_revenue_and_close_date(caller, make_caller) -> None:
    bob = make_caller(email="bob@acme.test", role=Role.MEMBER)
    lead = create_lead(caller)
    response = caller.patch(
        f"/api/v1/leads/{lead['id']}",
        json={"owner_id": bob.user_id, "expected_revenue": "12500.50", "close_date": "2027-01-31"},
    )
    assert response.status_code == 200, response.json
    body = response.json
    assert (body["lead"]["owner_id"], body["lead"]["expected_revenue"]) == (bob.user_id, 12500.5)
    owner = next(h for h in body["history"] if h["field"] == "owner_id")
    assert (owner["from_label"], owner["to_label"]) == ("ann", "bob")
    assert caller.patch(f"/api/v1/leads/{lead['id']}", json={"owner_id": 999999}).status_code == 404


def test_closed_ticket_is_no_longer_open_on_the_senders_card(caller) -> None:
    contact = create_contact(caller)
    ticket = _ticket(caller, contact_id=contact["id"], priority="high")
    card = caller.get("/api/v1/lookup?email=hank@globex.test").json["results"][0]
    assert [t["id"] for t in card["tickets"]] == [ticket["id"]]
    url = f"/api/v1/tickets/{ticket['id']}"
    assert caller.patch(url, json={"status": "closed"}).status_code == 200
    card = caller.get("/api/v1/lookup?email=hank@globex.test").json["results"][0]
    assert card["tickets"] == []
    reopened = caller.patch(url, json={"status": "open"}).json
    assert reopened["ticket"]["status"] == "open"
    card = caller.get("/api/v1/lookup?email=hank@globex.test").json["results"][0]
    assert [t["id"] for t in card["tickets"]] == [ticket["id"]]


# Archive, restore, purge -------------------------------------------------------------


def test_archived_contact_is_gone_and_restored_is_back(caller) -> None:
    contact = create_contact(caller)
    url = f"/api/v1/contacts/{contact['id']}"
    response = caller.delete(url)
    assert response.status_code == 204
    assert response.data == b""
    assert caller.get(url).status_code == 404
    found = caller.get("/api/v1/lookup?email=hank@globex.test").json["results"][0]
    assert found["contact"] is None
    assert caller.get("/api/v1/search?q=hank").json["results"] == []
    assert caller.get("/api/v1/contacts").json["results"] == []
    archived = caller.get("/api/v1/contacts?archived=true").json["results"]
    assert [c["id"] for c in archived] == [contact["id"]]
    again = caller.post("/api/v1/contacts", json={"name": "Hank", "emails": ["hank@globex.test"]})
    assert again.status_code == 409
    assert "archived" in again.json["message"]

    restored = caller.post(f"{url}/restore")
    assert restored.status_code == 200, restored.json
    found = caller.get("/api/v1/lookup?email=hank@globex.test").json["results"][0]
    assert found["contact"]["id"] == contact["id"]
    assert [h["field"] for h in caller.get(url).json["history"]] == ["archived", "archived"]


def test_restore_is_for_admins(caller, make_caller) -> None:
    member = make_caller(email="bob@acme.test", role=Role.MEMBER)
    lead = create_lead(caller)
    assert member.delete(f"/api/v1/leads/{lead['id']}").status_code == 204
    assert member.post(f"/api/v1/leads/{lead['id']}/restore").status_code == 403
    assert caller.post(f"/api/v1/leads/{lead['id']}/restore").status_code == 200


def test_archived_lead_leaves_the_contacts_card(caller) -> None:
    contact = create_contact(caller)
    lead = create_lead(caller, contact_id=contact["id"])
    assert caller.delete(f"/api/v1/leads/{lead['id']}").status_code == 204
    card = caller.get(f"/api/v1/contacts/{contact['id']}").json
    assert card["leads"] == []


def test_purge_removes_archived_records_for_good(app, caller) -> None:
    contact = create_contact(caller)
    kept = create_contact(caller, "Marge", ["marge@globex.test"])
    alone = email_json([{"type": "contact", "id": contact["id"]}], message_id="<a@x>")
    shared = email_json(
        [{"type": "contact", "id": contact["id"]}, {"type": "contact", "id": kept["id"]}],
        message_id="<b@x>",
    )
    for body in (alone, shared):
        assert caller.post("/api/v1/emails", json=body).status_code in (200, 201)
    assert caller.delete(f"/api/v1/contacts/{contact['id']}").status_code == 204
    with session_scope(app) as session:
        # Archived just now: not older than a day.
        assert purge_archived(session, parse_age("1d")).total == 0
        later = dt.datetime.now(dt.UTC) + dt.timedelta(days=31)
        result = purge_archived(session, parse_age("30d"), now=later)
        session.commit()
        assert (result.records["contact"], result.activities) == (1, 1)
        assert session.get(Contact, contact["id"]) is None
        assert session.scalars(select(ContactEmail.email)).all() == ["marge@globex.test"]
        assert session.scalars(select(Activity.message_id)).all() == ["<b@x>"]
        assert {link.record_id for link in session.scalars(select(ActivityLink))} == {kept["id"]}
        assert (
            session.scalars(
                select(RecordChange).where(RecordChange.record_id == contact["id"])
            ).all()
            == []
        )
    assert caller.post(f"/api/v1/contacts/{contact['id']}/restore").status_code == 404
    # Its address is free again.
    create_contact(caller, "Hank again", ["hank@globex.test"])


@pytest.mark.parametrize(
    ("text", "hours"), [("12h", 12), ("30d", 720), ("90d", 2160), (" 2W ", 336)]
)
def test_purge_ages(text: str, hours: int) -> None:
    assert parse_age(text) == dt.timedelta(hours=hours)


@pytest.mark.parametrize("text", ["", "30", "d30", "-1d", "1y", "1.5d"])
def test_purge_refuses_what_is_no_age(text: str) -> None:
    from connector.errors import InvalidInput

    with pytest.raises(InvalidInput):
        parse_age(text)


# Merge ------------------------------------------------------------------------------


def test_merge_moves_everything_to_the_survivor(caller) -> None:
    company = create_company(caller)
    ana = create_contact(caller, "Ana Lima", ["ana@globex.test"])
    dup = create_contact(caller, "ana lima", ["ana.lima@globex.test"], phone="+1 555 0100")
    assert [d["id"] for d in caller.get(f"/api/v1/contacts/{ana['id']}").json["duplicates"]] == [
        dup["id"]
    ]
    lead = create_lead(caller, contact_id=dup["id"])
    ticket = _ticket(caller, contact_id=dup["id"])
    task = caller.post(
        "/api/v1/tasks", json={"title": "Call", "record": {"type": "contact", "id": dup["id"]}}
    ).json
    caller.post(
        "/api/v1/notes",
        json={"body": "Met at the fair", "records": [{"type": "contact", "id": dup["id"]}]},
    )
    both = email_json(
        [{"type": "contact", "id": ana["id"]}, {"type": "contact", "id": dup["id"]}],
        message_id="<both@x>",
    )
    caller.post("/api/v1/emails", json=both)

    response = caller.post(f"/api/v1/contacts/{ana['id']}/merge", json={"from": dup["id"]})
    assert response.status_code == 200, response.json
    card = response.json
    assert card["contact"]["emails"] == ["ana@globex.test", "ana.lima@globex.test"]
    assert card["contact"]["phone"] == "+1 555 0100"
    assert card["company"]["id"] == company["id"]
    assert [lead["id"] for lead in card["leads"]] == [lead["id"]]
    assert [t["id"] for t in card["tickets"]] == [ticket["id"]]
    assert task["id"] in [t["id"] for t in card["tasks"]]
    assert sorted(a["kind"] for a in card["activities"]) == ["email", "note"]
    assert card["duplicates"] == []
    merged = next(h for h in card["history"] if h["field"] == "merged")
    assert merged["from"] == dup["id"] and "ana lima" in merged["from_label"]

    assert caller.get(f"/api/v1/contacts/{dup['id']}").status_code == 404
    found = caller.get("/api/v1/lookup?email=ana.lima@globex.test").json["results"][0]
    assert found["contact"]["id"] == ana["id"]
    moved = caller.get(f"/api/v1/leads/{lead['id']}").json
    assert moved["lead"]["contact_id"] == ana["id"]
    assert [h["field"] for h in moved["history"]] == ["contact_id"]


def test_merge_refuses_itself_and_stale_versions(caller) -> None:
    ana = create_contact(caller, "Ana", ["ana@globex.test"])
    dup = create_contact(caller, "Ana", ["ana2@globex.test"])
    url = f"/api/v1/contacts/{ana['id']}/merge"
    assert caller.post(url, json={"from": ana["id"]}).status_code == 400
    assert caller.post(url, json={"from": 999999}).status_code == 404
    stale = caller.post(url, json={"from": dup["id"]}, headers={"If-Match": '"7"'})
    assert stale.status_code == 412
    assert caller.get(f"/api/v1/contacts/{dup['id']}").status_code == 200


def test_merge_companies(caller) -> None:
    globex = create_company(caller, "Globex", ["globex.test"])
    other = create_company(caller, "Globex Corp", ["globex-corp.test"])
    hank = create_contact(caller, "Hank", ["hank@globex-corp.test"])
    assert hank["company"]["id"] == other["id"]
    response = caller.post(f"/api/v1/companies/{globex['id']}/merge", json={"from": other["id"]})
    assert response.status_code == 200, response.json
    assert response.json["company"]["domains"] == ["globex.test", "globex-corp.test"]
    assert caller.get(f"/api/v1/contacts/{hank['id']}").json["company"]["id"] == globex["id"]
    assert caller.get(f"/api/v1/companies/{other['id']}").status_code == 404


# Lists ------------------------------------------------------------------------------


def test_lists_filter_and_page_with_a_cursor(caller, make_caller) -> None:
    bob = make_caller(email="bob@acme.test", role=Role.MEMBER)
    ids = [create_lead(caller, title=f"Deal {n}")["id"] for n in range(5)]
    caller.patch(f"/api/v1/leads/{ids[1]}", json={"stage": "qualified", "owner_id": bob.user_id})
    caller.patch(f"/api/v1/leads/{ids[3]}", json={"stage": "qualified"})
    first = caller.get("/api/v1/leads?limit=2").json
    assert [r["id"] for r in first["results"]] == ids[:2]
    assert "total" not in first
    second = caller.get(f"/api/v1/leads?limit=2&cursor={first['next_cursor']}").json
    third = caller.get(f"/api/v1/leads?limit=2&cursor={second['next_cursor']}").json
    assert [r["id"] for r in second["results"] + third["results"]] == ids[2:]
    assert third["next_cursor"] is None
    qualified = caller.get("/api/v1/leads?stage=qualified").json["results"]
    assert [r["id"] for r in qualified] == [ids[1], ids[3]]
    bobs = caller.get(f"/api/v1/leads?owner_id={bob.user_id}").json["results"]
    assert [r["id"] for r in bobs] == [ids[1]]
    since = qualified[1]["updated_at"]
    recent = caller.get("/api/v1/leads", query_string={"updated_since": since}).json["results"]
    assert [r["id"] for r in recent] == [ids[3]]


def test_list_refuses_bad_filters(caller) -> None:
    assert caller.get("/api/v1/contacts?stage=won").status_code == 400
    assert caller.get("/api/v1/leads?stage=maybe").status_code == 400
    assert caller.get("/api/v1/companies?company_id=3").status_code == 400
    assert caller.get("/api/v1/leads?cursor=nonsense").status_code == 400
    assert caller.get("/api/v1/leads?updated_since=yesterday").status_code == 400
    assert caller.get("/api/v1/leads?limit=1000").status_code == 400


def test_contacts_list_by_company(caller) -> None:
    company = create_company(caller)
    hank = create_contact(caller)
    create_contact(caller, "Joe", ["joe@gmail.com"])
    listed = caller.get(f"/api/v1/contacts?company_id={company['id']}").json["results"]
    assert [c["id"] for c in listed] == [hank["id"]]


# Other organizations ------------------------------------------------------------------


def test_another_organization_gets_404(caller, make_caller) -> None:
    other = make_caller(org="Umbrella", email="wes@umbrella.test")
    contact = create_contact(caller)
    company = create_company(caller, "Initech", ["initech.test"])
    lead = create_lead(caller)
    ticket = _ticket(caller)
    for plural, record in [
        ("contacts", contact),
        ("companies", company),
        ("leads", lead),
        ("tickets", ticket),
    ]:
        url = f"/api/v1/{plural}/{record['id']}"
        assert other.patch(url, json={}).status_code == 404
        assert other.delete(url).status_code == 404
        assert other.post(f"{url}/restore").status_code == 404
        assert caller.get(url).status_code == 200
    mine = create_contact(other, "Wes", ["wes@umbrella.test"])
    assert (
        other.post(f"/api/v1/contacts/{mine['id']}/merge", json={"from": contact["id"]}).status_code
        == 404
    )
    assert other.get("/api/v1/leads").json["results"] == []


def test_openapi_documents_the_lifecycle(client) -> None:
    spec = client.get("/api/v1/openapi.json").json
    for plural in ("contacts", "companies", "leads", "tickets"):
        item = spec["paths"][f"/api/v1/{plural}/{{record_id}}"]
        assert {"get", "patch", "delete"} <= set(item)
        assert "412" in item["patch"]["responses"]
        assert "post" in spec["paths"][f"/api/v1/{plural}/{{record_id}}/restore"]
        assert "get" in spec["paths"][f"/api/v1/{plural}"]
    for plural in ("contacts", "companies"):
        assert "post" in spec["paths"][f"/api/v1/{plural}/{{record_id}}/merge"]


def test_purge_command(app, runner, caller) -> None:
    lead = create_lead(caller)
    assert caller.delete(f"/api/v1/leads/{lead['id']}").status_code == 204
    refused = runner.invoke(args=["purge", "--older-than", "soon"])
    assert refused.exit_code == 2
    assert "12h, 30d" in refused.output
    kept = runner.invoke(args=["purge", "--older-than", "1d"])
    assert kept.exit_code == 0, kept.output
    assert "Removed 0 lead(s)" in kept.output
    with session_scope(app) as session:
        from connector.records.models import Lead

        session.get(Lead, lead["id"]).archived_at = dt.datetime.now(dt.UTC) - dt.timedelta(hours=13)
    dry = runner.invoke(args=["purge", "--older-than", "12h", "--dry-run"])
    assert "Would remove 1 lead(s)" in dry.output
    done = runner.invoke(args=["purge", "--older-than", "12h"])
    assert "Removed 1 lead(s)" in done.output
    assert caller.post(f"/api/v1/leads/{lead['id']}/restore").status_code == 404


def test_of_two_concurrent_edits_the_second_is_refused(app, caller) -> None:
    """Both read version 1; the first writes; the second's conditional UPDATE finds no row
    of version 1 any more: 412, and the first edit stands."""
    from connector.errors import PreconditionFailed
    from connector.orgs.context import Ctx
    from connector.orgs.models import User
    from connector.records import editing
    from connector.records.refs import RecordRef
    from connector.store import get_store

    lead = create_lead(caller)
    factory = app.extensions["connector.sessionmaker"]
    first, second = factory(), factory()
    try:
        contexts = [
            Ctx(
                s, s.get(User, caller.user_id), get_store(app), app.extensions["connector.settings"]
            )
            for s in (first, second)
        ]
        for ctx in contexts:
            editing.get_record(ctx.session, ctx.org_id, RecordRef.of("lead", lead["id"]))
        editing.update_lead(contexts[0], lead["id"], {"stage": "qualified"}, 1)
        first.commit()
        with pytest.raises(PreconditionFailed):
            editing.update_lead(contexts[1], lead["id"], {"stage": "won"}, 1)
        second.rollback()
    finally:
        first.close()
        second.close()
    after = caller.get(f"/api/v1/leads/{lead['id']}").json
    assert after["lead"]["stage"] == "qualified"
    assert [h["to"] for h in after["history"]] == ["qualified"]


def test_history_lines_read_as_a_person_would_say_them() -> None:
    from zoneinfo import ZoneInfo

    from connector.lookup.view_models import history_line, local_time

    def entry(field, before, after, labels=(None, None)):
        return {
            "at": "2026-11-12T19:02:00+00:00",
            "by": {"id": 1, "name": "Ana"},
            "field": field,
            "from": before,
            "to": after,
            "from_label": labels[0],
            "to_label": labels[1],
        }

    year = dt.datetime.now(dt.UTC).year
    new_york = ZoneInfo("America/New_York")
    when = local_time(f"{year}-11-12T19:02:00+00:00", new_york)
    assert when == "12 Nov 14:02"  # this year's: no year written
    assert local_time(f"{year - 1}-07-01T00:30:00+00:00", new_york) == f"30 Jun {year - 1} 20:30"
    assert history_line(entry("stage", "qualified", "won"), when) == (
        f"stage: qualified → won, by Ana, {when}"
    )
    assert history_line(entry("owner_id", 1, 2, ("Ana", "Ben")), "x") == (
        "owner: Ana → Ben, by Ana, x"
    )
    assert history_line(entry("expected_revenue", None, 12000.0), "x") == (
        "expected revenue: none → 12000, by Ana, x"
    )
    assert history_line(entry("archived", False, True), "x") == "archived, by Ana, x"
    assert history_line(entry("archived", True, False), "x") == "restored, by Ana, x"
    merged = entry("merged", 7, 3, ("Ana Lima (#7)", "Ana Lima"))
    assert history_line(merged, "x") == "merged Ana Lima (#7) into this, by Ana, x"
