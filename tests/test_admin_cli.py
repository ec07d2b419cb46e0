"""Administration from the command line: users, roles, keys, organizations; and deactivation,
which stops a person's keys, Entra tokens, Gmail add-on requests, browser sessions and
record links at once while their records stay."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from connector.orgs.models import Role
from connector.providers.google.tokens import GoogleTokenVerifier, google_certificates
from connector.providers.microsoft.entra import EntraTokenValidator, JwksCache
from tests.fakes.google import CLIENT_ID as GOOGLE_CLIENT_ID
from tests.fakes.google import SERVICE_ACCOUNT, FakeGoogle
from tests.fakes.microsoft import CLIENT_ID as MS_CLIENT_ID
from tests.fakes.microsoft import TENANT, FakeEntra
from tests.fakes.servers import serve
from tests.helpers import create_contact, create_lead


def run(runner, *args: str, code: int = 0) -> str:
    result = runner.invoke(args=list(args))
    assert result.exit_code == code, result.output
    return result.output


def listed_key_ids(runner, email: str) -> list[int]:
    output = run(runner, "keys", "list", "--email", email)
    return [int(line.split()[0]) for line in output.splitlines()[1:]]


def test_users_list_shows_who_has_access(runner, caller, make_caller) -> None:
    make_caller("Initech", "peter@initech.test", Role.MEMBER)
    assert caller.get("/api/v1/me").status_code == 200  # a key use, kept to the minute
    output = run(runner, "users", "list")
    header, *rows = output.splitlines()
    assert header.split()[:4] == ["EMAIL", "NAME", "ROLE", "ORGANIZATION"]
    assert len(rows) == 2
    ann = next(r for r in rows if r.startswith("ann@acme.test"))
    assert " admin " in ann and " Acme " in ann and " active " in ann
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC$", ann)  # last key use
    peter = next(r for r in rows if r.startswith("peter@initech.test"))
    assert " member " in peter and " Initech " in peter and peter.endswith("never")

    only = run(runner, "users", "list", "--org", "Initech").splitlines()
    assert len(only) == 2 and only[1].startswith("peter@initech.test")
    missing = runner.invoke(args=["users", "list", "--org", "Nowhere"])
    assert missing.exit_code == 1
    assert "There is no organization 'Nowhere'" in missing.output
    assert "Traceback" not in missing.output


def test_deactivate_stops_the_key_at_once_and_reactivate_brings_it_back(
    runner, caller, make_caller
) -> None:
    colleague = make_caller(email="bob@acme.test", role=Role.MEMBER)
    contact = create_contact(caller)
    assert caller.get("/api/v1/me").status_code == 200

    output = run(runner, "users", "deactivate", "--email", "ANN@acme.test")
    assert "Deactivated ann@acme.test" in output
    response = caller.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json["code"] == 401
    assert caller.get(f"/api/v1/contacts/{contact['id']}").status_code == 401
    # Their records stay, for the colleagues.
    assert colleague.get(f"/api/v1/contacts/{contact['id']}").status_code == 200
    listed = run(runner, "users", "list", "--org", "Acme")
    assert re.search(r"ann@acme\.test .* deactivated \d{4}-", listed)
    assert "already" in run(runner, "users", "deactivate", "--email", "ann@acme.test")

    assert "Reactivated ann@acme.test" in run(
        runner, "users", "reactivate", "--email", "ann@acme.test"
    )
    assert caller.get("/api/v1/me").status_code == 200
    assert "active already" in run(runner, "users", "reactivate", "--email", "ann@acme.test")


def test_keys_list_never_shows_the_secret_and_revoke_takes_a_listed_id(
    runner, caller, make_caller
) -> None:
    other = make_caller(email="bob@acme.test")
    output = run(runner, "keys", "list")
    assert caller.key not in output and other.key not in output
    assert caller.key[:10] + "..." in output  # the first characters, to tell keys apart
    assert output.splitlines()[0].split() == [
        "ID",
        "USER",
        "LABEL",
        "KEY",
        "CREATED",
        "LAST",
        "USED",
        "REVOKED",
    ]
    [key_id] = listed_key_ids(runner, caller.email)
    assert caller.get("/api/v1/me").status_code == 200

    assert f"Revoked key {key_id} of ann@acme.test" in run(runner, "keys", "revoke", str(key_id))
    assert caller.get("/api/v1/me").status_code == 401
    assert other.get("/api/v1/me").status_code == 200  # only that key
    [row] = run(runner, "keys", "list", "--email", caller.email).splitlines()[1:]
    assert re.search(r"\d\d:\d\d UTC$", row)  # revoked at
    assert "revoked already" in run(runner, "keys", "revoke", str(key_id))
    # Reactivating a user does not bring a revoked key back.
    run(runner, "users", "deactivate", "--email", caller.email)
    run(runner, "users", "reactivate", "--email", caller.email)
    assert caller.get("/api/v1/me").status_code == 401


def test_set_role_changes_what_they_may_do(runner, caller, make_caller) -> None:
    member = make_caller(email="bob@acme.test", role=Role.MEMBER)
    lead = create_lead(caller)
    assert caller.delete(f"/api/v1/leads/{lead['id']}").status_code == 204
    assert member.post(f"/api/v1/leads/{lead['id']}/restore").status_code == 403

    assert "bob@acme.test is now admin" in run(
        runner, "users", "set-role", "--email", "bob@acme.test", "--role", "admin"
    )
    assert member.post(f"/api/v1/leads/{lead['id']}/restore").status_code == 200
    assert "admin already" in run(
        runner, "users", "set-role", "--email", "bob@acme.test", "--role", "admin"
    )
    run(runner, "users", "set-role", "--email", "ann@acme.test", "--role", "member")
    assert caller.delete(f"/api/v1/leads/{lead['id']}").status_code == 204
    assert caller.post(f"/api/v1/leads/{lead['id']}/restore").status_code == 403
    assert " member " in run(runner, "users", "list").splitlines()[1]


def test_orgs_list(runner, caller, make_caller) -> None:
    make_caller("Initech", "peter@initech.test")
    make_caller("Initech", "milton@initech.test")
    run(runner, "orgs", "bind-entra", "--org", "Initech", "--tenant", TENANT)
    run(runner, "users", "deactivate", "--email", "milton@initech.test")
    rows = run(runner, "orgs", "list").splitlines()
    assert rows[0].split() == ["ID", "NAME", "USERS", "ENTRA", "TENANT"]
    assert re.search(r"Acme +1 active of 1 +-$", rows[1])
    assert re.search(rf"Initech +1 active of 2 +{TENANT}$", rows[2])


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["users", "deactivate", "--email", "nobody@acme.test"], 1, "There is no user"),
        (["users", "reactivate", "--email", "nobody@acme.test"], 1, "There is no user"),
        (["users", "set-role", "--email", "ann@acme.test", "--role", "owner"], 2, "owner"),
        (["users", "set-role", "--email", "nobody@x.test", "--role", "admin"], 1, "no user"),
        (["users", "deactivate"], 2, "--email"),
        (["keys", "revoke", "999"], 1, "There is no API key 999"),
        (["keys", "revoke", "abc"], 2, "abc"),
        (["keys", "revoke", "0"], 2, "0"),
        (["keys", "list", "--email", "nobody@acme.test"], 1, "There is no user"),
    ],
)
def test_bad_input_is_a_message(runner, caller, args, code: int, message: str) -> None:
    result = runner.invoke(args=args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_an_empty_instance_lists_nothing(runner) -> None:
    assert run(runner, "users", "list") == "No users.\n"
    assert run(runner, "keys", "list") == "No API keys.\n"
    assert run(runner, "orgs", "list") == "No organizations.\n"


# Every way in is refused for a deactivated user ------------------------------------------


@pytest.fixture
def entra(app, runner, caller) -> Iterator[FakeEntra]:
    fake = FakeEntra()
    with serve(fake.jwks_app()) as url:
        app.extensions["connector.entra_validator"] = EntraTokenValidator(
            JwksCache(url + "/discovery/v2.0/keys"), client_id=MS_CLIENT_ID, scope="access_as_user"
        )
        run(runner, "orgs", "bind-entra", "--org", "Acme", "--tenant", TENANT)
        yield fake


def test_a_deactivated_users_entra_token_is_401(client, runner, caller, entra) -> None:
    headers = {"Authorization": f"Bearer {entra.token(caller.email)}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    run(runner, "users", "deactivate", "--email", caller.email)
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    run(runner, "users", "reactivate", "--email", caller.email)
    assert client.get("/api/v1/me", headers=headers).status_code == 200


GMAIL_URL = "https://connector.example.test"


@pytest.fixture
def google(app) -> Iterator[FakeGoogle]:
    fake = FakeGoogle()
    with serve(fake.certs_app()) as url:
        app.config.update(
            PUBLIC_URL=GMAIL_URL,
            GOOGLE_SERVICE_ACCOUNT=SERVICE_ACCOUNT,
            GOOGLE_CLIENT_ID=GOOGLE_CLIENT_ID,
        )
        app.extensions["connector.google_verifier"] = GoogleTokenVerifier(
            google_certificates(url + "/oauth2/v1/certs")
        )
        yield fake


def gmail_homepage(client, google: FakeGoogle, email: str) -> Any:
    event = {
        "commonEventObject": {"hostApp": "GMAIL", "platform": "WEB"},
        "authorizationEventObject": {
            "userOAuthToken": "user-oauth-token",
            "userIdToken": google.user_token(email),
        },
    }
    token = google.system_token(GMAIL_URL + "/gmail/homepage")
    return client.post("/gmail/homepage", json=event, headers={"Authorization": f"Bearer {token}"})


def test_a_deactivated_user_gets_an_error_card_in_gmail(client, runner, caller, google) -> None:
    before = gmail_homepage(client, google, caller.email)
    assert before.status_code == 200
    assert "turned off" not in before.get_data(as_text=True)
    run(runner, "users", "deactivate", "--email", caller.email)
    after = gmail_homepage(client, google, caller.email)
    assert after.status_code == 200  # Google shows only cards
    card = after.json["action"]["navigations"][0]["pushCard"]
    assert card["header"]["title"] == "Something went wrong"
    assert "access to the connector has been turned off" in after.get_data(as_text=True)


def link_to(caller, record_type: str, record_id: int) -> str:
    response = caller.post("/api/v1/record-links", json={"type": record_type, "id": record_id})
    assert response.status_code == 201
    parts = urlsplit(response.json["url"])
    return f"{parts.path}?{parts.query}"


def test_a_deactivated_users_session_and_links_stop(
    app, runner, caller, make_caller, client
) -> None:
    contact = create_contact(caller)
    link = link_to(caller, "contact", contact["id"])
    with client.session_transaction() as session:
        session["user_id"] = caller.user_id
    assert client.get("/account").status_code == 200
    page = client.get(link)
    assert page.status_code == 200 and 'name="csrf"' in page.get_data(as_text=True)

    run(runner, "users", "deactivate", "--email", caller.email)
    account = client.get("/account")
    assert account.status_code == 302 and account.location.endswith("/connect")
    refused = client.get(link)
    assert refused.status_code == 401
    assert "no longer has access" in refused.get_data(as_text=True)
    edit = client.post(link.partition("?")[0], data={"name": "Changed", "version": "1"})
    assert edit.status_code == 403
    # A colleague's link to the same record still opens; the record is as it was.
    colleague = make_caller(email="bob@acme.test")
    assert client.get(link_to(colleague, "contact", contact["id"])).status_code == 200
    assert (
        colleague.get(f"/api/v1/contacts/{contact['id']}").json["contact"]["name"]
        == (contact["name"])
    )

    run(runner, "users", "reactivate", "--email", caller.email)
    assert client.get(link).status_code == 200


def test_a_deactivated_user_cannot_sign_in(app, runner, caller, idp, browser) -> None:
    _fake, base = idp
    run(runner, "users", "deactivate", "--email", caller.email)
    context = browser.new_context()
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        page.goto(base + "/connect")
        page.get_by_role("link", name="Sign in with Google").click()
        page.get_by_role("link", name="Allow").click()
        page.get_by_role("heading", name="Sign-in did not complete").wait_for()
        assert "access to this connector has been turned off" in page.content()
        page.goto(base + "/account")
        page.get_by_role("heading", name="Connect your mailbox").wait_for()
    finally:
        context.close()
    from tests.test_signin import linked

    assert linked(app) == []
