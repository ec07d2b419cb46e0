"""Followers of a record through the API: who follows, adding by user, contact or address,
removing (the owner stays removed), another organization's records and people, and the
followers on the record cards."""

from __future__ import annotations

from typing import Any

import pytest

from connector.db import session_scope
from connector.orgs import service as orgs
from connector.orgs.models import Role, User
from tests.helpers import create_company, create_contact, create_lead


def followers_of(caller: Any, path: str) -> list[dict[str, Any]]:
    response = caller.get(f"/api/v1/{path}/followers")
    assert response.status_code == 200, response.json
    return response.json["results"]


@pytest.fixture
def bob(make_caller: Any) -> Any:
    """A member of the caller's organization."""
    return make_caller(email="bob@acme.test", role=Role.MEMBER)


def test_the_owner_follows_without_being_added(caller, bob):
    lead = create_lead(caller)
    (owner,) = followers_of(caller, f"leads/{lead['id']}")
    assert owner == {
        "id": owner["id"],
        "kind": "user",
        "name": "ann",
        "email": "ann@acme.test",
        "user_id": caller.user_id,
        "contact_id": None,
        "is_owner": True,
        "is_me": True,
    }
    assert isinstance(owner["id"], int)
    # Another member sees the same follower, not as themselves.
    (seen,) = followers_of(bob, f"leads/{lead['id']}")
    assert seen["id"] == owner["id"] and seen["is_owner"] and not seen["is_me"]


def test_add_by_user_id_then_again(caller, bob):
    lead = create_lead(caller)
    path = f"/api/v1/leads/{lead['id']}/followers"
    first = caller.post(path, json={"user_id": bob.user_id})
    assert first.status_code == 201, first.json
    assert first.json["kind"] == "user" and first.json["user_id"] == bob.user_id
    assert first.json["email"] == "bob@acme.test"
    assert not first.json["is_owner"] and not first.json["is_me"]
    again = caller.post(path, json={"user_id": bob.user_id})
    assert again.status_code == 200
    assert again.json == first.json
    # Bob sees himself; the owner first (oldest), then Bob.
    listed = followers_of(bob, f"leads/{lead['id']}")
    assert [f["user_id"] for f in listed] == [caller.user_id, bob.user_id]
    assert [f["is_me"] for f in listed] == [False, True]
    # Adding the owner, who follows already, changes nothing.
    owner = caller.post(path, json={"user_id": caller.user_id})
    assert owner.status_code == 200 and owner.json["is_owner"]


def test_add_by_contact_id_and_by_email(caller, bob):
    contact = create_contact(caller, emails=["hank@globex.test", "h@globex.test"])
    lead = create_lead(caller, contact_id=contact["id"])
    path = f"/api/v1/leads/{lead['id']}/followers"
    by_id = caller.post(path, json={"contact_id": contact["id"]})
    assert by_id.status_code == 201, by_id.json
    assert by_id.json == {
        "id": by_id.json["id"],
        "kind": "contact",
        "name": "Hank Scorpio",
        "email": "hank@globex.test",
        "user_id": None,
        "contact_id": contact["id"],
        "is_owner": False,
        "is_me": False,
    }
    # Any of the contact's addresses names them, in any case and with a display name.
    by_email = caller.post(path, json={"email": "Hank <H@Globex.test>"})
    assert by_email.status_code == 200 and by_email.json["id"] == by_id.json["id"]
    user = caller.post(path, json={"email": "BOB@acme.test"})
    assert user.status_code == 201 and user.json["user_id"] == bob.user_id
    kinds = [f["kind"] for f in followers_of(caller, f"leads/{lead['id']}")]
    assert kinds == ["user", "contact", "user"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "nobody@globex.test"}, "email"),
        ({"email": "not an address"}, "email"),
        ({"user_id": 999999}, "user_id"),
        ({"contact_id": 999999}, "contact_id"),
        ({}, None),
        ({"user_id": 1, "email": "ann@acme.test"}, None),
        ({"user_id": "x"}, "user_id"),
    ],
)
def test_who_is_no_one_of_the_organization_is_a_400(caller, body, field):
    lead = create_lead(caller)
    response = caller.post(f"/api/v1/leads/{lead['id']}/followers", json=body)
    assert response.status_code == 400, response.json
    assert response.json["message"]
    if field is not None:
        assert field in str(response.json)
    assert len(followers_of(caller, f"leads/{lead['id']}")) == 1


def test_unknown_email_says_so(caller):
    lead = create_lead(caller)
    response = caller.post(
        f"/api/v1/leads/{lead['id']}/followers", json={"email": "nobody@globex.test"}
    )
    assert response.status_code == 400
    assert "nobody@globex.test" in response.json["message"]


def test_another_organizations_people_cannot_follow(caller, make_caller):
    other = make_caller(org="Initech", email="peter@initech.test")
    their_contact = create_contact(other, "Milton", emails=["milton@initech.test"])
    lead = create_lead(caller)
    path = f"/api/v1/leads/{lead['id']}/followers"
    for body in (
        {"user_id": other.user_id},
        {"email": "peter@initech.test"},
        {"contact_id": their_contact["id"]},
        {"email": "milton@initech.test"},
    ):
        response = caller.post(path, json=body)
        assert response.status_code == 400, (body, response.json)
    assert len(followers_of(caller, f"leads/{lead['id']}")) == 1


def test_a_deactivated_user_cannot_be_added(app, caller, bob):
    with session_scope(app) as session:
        user = session.get(User, bob.user_id)
        assert user is not None
        orgs.deactivate_user(session, user)
    lead = create_lead(caller)
    for body in ({"user_id": bob.user_id}, {"email": "bob@acme.test"}):
        response = caller.post(f"/api/v1/leads/{lead['id']}/followers", json=body)
        assert response.status_code == 400
        assert "deactivated" in response.json["message"]


def test_another_organizations_record_is_a_404(caller, make_caller):
    other = make_caller(org="Initech", email="peter@initech.test")
    lead = create_lead(other)
    (theirs,) = followers_of(other, f"leads/{lead['id']}")
    base = f"/api/v1/leads/{lead['id']}/followers"
    assert caller.get(base).status_code == 404
    assert caller.post(base, json={"user_id": caller.user_id}).status_code == 404
    assert caller.delete(f"{base}/{theirs['id']}").status_code == 404
    # Their follower under one of our records is no follower of ours either.
    ours = create_lead(caller)
    assert caller.delete(f"/api/v1/leads/{ours['id']}/followers/{theirs['id']}").status_code == 404
    assert [f["id"] for f in followers_of(other, f"leads/{lead['id']}")] == [theirs["id"]]


def test_an_archived_record_is_a_404(caller):
    lead = create_lead(caller)
    (owner,) = followers_of(caller, f"leads/{lead['id']}")
    assert caller.delete(f"/api/v1/leads/{lead['id']}").status_code == 204
    base = f"/api/v1/leads/{lead['id']}/followers"
    assert caller.get(base).status_code == 404
    assert caller.post(base, json={"user_id": caller.user_id}).status_code == 404
    assert caller.delete(f"{base}/{owner['id']}").status_code == 404


def test_removing_the_owner_sticks(caller, bob):
    lead = create_lead(caller)
    path = f"/api/v1/leads/{lead['id']}/followers"
    (owner,) = followers_of(caller, f"leads/{lead['id']}")
    added = caller.post(path, json={"user_id": bob.user_id}).json
    assert caller.delete(f"{path}/{owner['id']}").status_code == 204
    # Read again and again: the owner is not made a follower behind their back.
    for _ in range(2):
        assert [f["id"] for f in followers_of(caller, f"leads/{lead['id']}")] == [added["id"]]
    card = caller.get(f"/api/v1/leads/{lead['id']}").json
    assert [f["id"] for f in card["followers"]] == [added["id"]]
    # Removing again changes nothing; a follower of another record is a 404.
    assert caller.delete(f"{path}/{owner['id']}").status_code == 204
    other = create_lead(caller, title="Other deal")
    assert caller.delete(f"/api/v1/leads/{other['id']}/followers/{added['id']}").status_code == 404
    assert caller.delete(f"{path}/999999").status_code == 404
    # Added again, the owner follows again (a new follow: 201), with the same id.
    back = caller.post(path, json={"user_id": caller.user_id})
    assert back.status_code == 201 and back.json["id"] == owner["id"]


def test_every_record_type_has_followers(caller, bob):
    company = create_company(caller)
    contact = create_contact(caller)
    ticket = caller.post("/api/v1/tickets", json={"subject": "Printer on fire"}).json["ticket"]
    for path in (
        f"companies/{company['id']}",
        f"contacts/{contact['id']}",
        f"tickets/{ticket['id']}",
    ):
        response = caller.post(f"/api/v1/{path}/followers", json={"user_id": bob.user_id})
        assert response.status_code == 201, (path, response.json)
        assert [f["user_id"] for f in followers_of(caller, path)] == [caller.user_id, bob.user_id]


def test_cards_have_followers(caller, bob):
    company = create_company(caller)
    contact = create_contact(caller, company_id=company["id"])
    lead = create_lead(caller, contact_id=contact["id"])
    # Before anyone asked the followers API: the owner shows, without a row (no id).
    card = caller.get(f"/api/v1/leads/{lead['id']}").json
    assert card["followers"] == [
        {
            "id": None,
            "kind": "user",
            "name": "ann",
            "email": "ann@acme.test",
            "user_id": caller.user_id,
            "contact_id": None,
            "is_owner": True,
            "is_me": True,
        }
    ]
    added = caller.post(
        f"/api/v1/leads/{lead['id']}/followers", json={"contact_id": contact["id"]}
    ).json
    card = caller.get(f"/api/v1/leads/{lead['id']}").json
    assert card["followers"] == followers_of(caller, f"leads/{lead['id']}")
    assert [f["id"] for f in card["followers"]][1:] == [added["id"]]
    assert all(isinstance(f["id"], int) for f in card["followers"])
    # The contact's card shows the contact's own followers, the company's the company's.
    caller.post(f"/api/v1/contacts/{contact['id']}/followers", json={"user_id": bob.user_id})
    contact_card = caller.get(f"/api/v1/contacts/{contact['id']}").json
    assert [f["user_id"] for f in contact_card["followers"]] == [caller.user_id, bob.user_id]
    company_card = caller.get(f"/api/v1/companies/{company['id']}").json
    assert [f["user_id"] for f in company_card["followers"]] == [caller.user_id]


def test_lookup_cards_say_who_is_me_for_each_reader(caller, bob):
    contact = create_contact(caller)
    caller.post(f"/api/v1/contacts/{contact['id']}/followers", json={"user_id": bob.user_id})

    def lookup(who: Any) -> list[dict[str, Any]]:
        response = who.get("/api/v1/lookup?email=hank@globex.test")
        assert response.status_code == 200, response.json
        return response.json["results"][0]["followers"]

    # Ann's answer is cached for the organization; Bob's still says he is Bob.
    assert [(f["user_id"], f["is_me"]) for f in lookup(caller)] == [
        (caller.user_id, True),
        (bob.user_id, False),
    ]
    assert [(f["user_id"], f["is_me"]) for f in lookup(bob)] == [
        (caller.user_id, False),
        (bob.user_id, True),
    ]
    # A follow is a change of the organization's records: the cached answer goes.
    (_, bob_row) = followers_of(caller, f"contacts/{contact['id']}")
    caller.delete(f"/api/v1/contacts/{contact['id']}/followers/{bob_row['id']}")
    assert [f["user_id"] for f in lookup(bob)] == [caller.user_id]
    # An address that is no record's has no followers.
    empty = caller.get("/api/v1/lookup?email=someone@elsewhere.test").json["results"][0]
    assert empty["followers"] == []


def test_a_record_without_owner_has_no_implicit_follower(caller, bob):
    lead = create_lead(caller)
    response = caller.patch(f"/api/v1/leads/{lead['id']}", json={"owner_id": None})
    assert response.status_code == 200 and response.json["lead"]["owner_id"] is None
    assert followers_of(caller, f"leads/{lead['id']}") == []
    assert caller.get(f"/api/v1/leads/{lead['id']}").json["followers"] == []
    added = caller.post(f"/api/v1/leads/{lead['id']}/followers", json={"user_id": bob.user_id})
    assert added.status_code == 201
    card = caller.get(f"/api/v1/leads/{lead['id']}").json
    assert [f["user_id"] for f in card["followers"]] == [bob.user_id]
