"""Sign-in with Google, driven in a real browser against a local fake identity provider."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from connector.accounts.crypto import DecryptionError, TokenCipher, derive_key
from connector.accounts.models import LinkedAccount
from connector.db import session_scope
from tests.fakes.servers import serve


@pytest.fixture
def page(browser):
    context = browser.new_context()
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def linked(app) -> list[LinkedAccount]:
    with session_scope(app) as session:
        return list(session.scalars(sa.select(LinkedAccount)))


def start(page, base: str) -> None:
    page.goto(base + "/connect")
    page.get_by_role("link", name="Sign in with Google").click()
    page.get_by_role("heading", name="Connector wants to access your Google Account").wait_for()


def test_sign_in_links_the_account_with_an_encrypted_refresh_token(app, idp, page) -> None:
    fake, base = idp
    start(page, base)
    page.get_by_role("link", name="Allow").click()
    page.get_by_role("heading", name="You're connected").wait_for()
    [account] = linked(app)
    assert account.email == fake.user_email and account.subject == "google-sub-1"
    assert "openid" in account.scopes
    [request] = fake.token_requests
    assert request["code_verifier"] and request["grant_type"] == "authorization_code"
    # The raw column is ciphertext: unreadable without the key, readable with it.
    engine = app.extensions["connector.engine"]
    with engine.connect() as connection:
        raw = connection.execute(
            sa.text("SELECT refresh_token_encrypted FROM linked_accounts")
        ).scalar_one()
    raw = bytes(raw)
    assert b"fake-refresh-token-secret" not in raw
    with pytest.raises(DecryptionError):
        TokenCipher(derive_key("another secret")).decrypt(raw)
    assert app.extensions["connector.token_cipher"].decrypt(raw) == "1//fake-refresh-token-secret"


def _callback_url(page) -> str:
    return page.get_by_role("link", name="Allow").get_attribute("href")


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("state mismatch", "expired or was already used"),
        ("replayed state", "expired or was already used"),
        ("wrong nonce", "does not belong to this sign-in"),
        ("denied consent", "cancelled"),
        ("token endpoint error", "did not complete the sign-in"),
        ("other browser", "started in another browser"),
    ],
)
def test_refusals_store_nothing(app, idp, page, browser, case: str, expected: str) -> None:
    fake, base = idp
    if case == "wrong nonce":
        fake.mode = "wrong_nonce"
    if case == "token endpoint error":
        fake.mode = "token_error"
    start(page, base)
    url = _callback_url(page)
    if case == "state mismatch":
        page.goto(url.replace("state=", "state=forged"))
    elif case == "replayed state":
        page.get_by_role("link", name="Allow").click()
        page.get_by_role("heading", name="You're connected").wait_for()
        with session_scope(app) as session:
            session.execute(sa.delete(LinkedAccount))
        page.goto(url)
    elif case == "denied consent":
        page.get_by_role("link", name="Cancel").click()
    elif case == "other browser":
        other = browser.new_context()
        page = other.new_page()
        page.goto(url)
    else:
        page.get_by_role("link", name="Allow").click()
    page.get_by_role("heading", name="Sign-in did not complete").wait_for()
    assert expected in page.content()
    assert linked(app) == []


def test_an_address_without_a_user_is_refused(app, idp, page) -> None:
    fake, base = idp
    fake.user_email = "stranger@acme.test"
    start(page, base)
    page.get_by_role("link", name="Allow").click()
    page.get_by_role("heading", name="Sign-in did not complete").wait_for()
    assert "not a user of this connector" in page.content()
    assert linked(app) == []


def test_the_encryption_key_can_be_set(app) -> None:
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    cipher = TokenCipher.from_config(key, "secret")
    token: Any = cipher.encrypt("x")
    assert Fernet(key).decrypt(token) == b"x"
    with pytest.raises(DecryptionError):
        TokenCipher.from_config(None, "secret").decrypt(token)


def test_account_page_revokes_keys_at_once_and_disconnects(app, idp, page, caller) -> None:
    fake, base = idp
    start(page, base)
    page.get_by_role("link", name="Allow").click()
    page.get_by_role("link", name="Your account").click()
    page.get_by_role("heading", name="Connected mail accounts").wait_for()
    assert fake.user_email in page.content()
    assert caller.get("/api/v1/me").status_code == 200
    page.get_by_role("button", name="Revoke").click()
    page.get_by_text("Key revoked.").wait_for()
    assert caller.get("/api/v1/me").status_code == 401
    page.get_by_role("button", name="Disconnect").click()
    page.get_by_text("Google has withdrawn the connector's access").wait_for()
    assert linked(app) == []
    # Disconnecting withdrew the grant at Google, with the refresh token it was given.
    assert fake.revoked == ["1//fake-refresh-token-secret"]


def test_disconnect_forgets_the_account_even_when_google_cannot_be_told(
    app, idp, page, caller
) -> None:
    fake, base = idp
    start(page, base)
    page.get_by_role("link", name="Allow").click()
    page.get_by_role("link", name="Your account").click()
    fake.mode = "revoke_down"
    page.get_by_role("button", name="Disconnect").click()
    page.get_by_text("Google could not be told").wait_for()
    assert "myaccount.google.com/permissions" in page.content()
    assert linked(app) == [] and fake.revoked == []


def test_disconnecting_microsoft_forgets_msal_s_cache(app, caller) -> None:
    from connector.accounts import service as accounts
    from connector.accounts.models import Provider
    from connector.orgs.models import User
    from connector.store import get_store

    store, cipher = get_store(app), app.extensions["connector.token_cipher"]
    key = accounts.msal_cache_key(caller.user_id)
    store.set(key, cipher.encrypt('{"RefreshToken": {}}'))
    with app.app_context(), session_scope(app) as session:
        user = session.get(User, caller.user_id)
        account = accounts.link_account(
            session, cipher, user, Provider.MICROSOFT, "oid", user.email, ["Mail.Send"], "0.rt"
        )
        told = accounts.disconnect(session, store, cipher, account, "http://127.0.0.1:9/revoke")
    assert told is False  # Microsoft has no per-app revoke: the page says where to do it
    assert store.get(key) is None and linked(app) == []


def test_account_page_needs_a_session_and_csrf(app, idp, client, caller) -> None:
    assert client.get("/account").status_code == 302
    assert client.post("/account/keys/1/revoke").status_code == 403
    assert caller.get("/api/v1/me").status_code == 200


def test_outlook_dialog_hands_the_pane_a_new_key(app, idp, page, caller) -> None:
    fake, base = idp
    page.add_init_script("""
      window.__messages = [];
      window.Office = { onReady: (cb) => setTimeout(cb, 0),
        context: { ui: { messageParent: (m) => window.__messages.push(m) } } };
    """)
    page.route(
        "https://appsforoffice.microsoft.com/**",
        lambda route: route.fulfill(
            status=200, content_type="application/javascript", body="/* mocked */"
        ),
    )
    page.goto(base + "/connect?client=outlook")
    page.get_by_role("link", name="Sign in with Google").click()
    with page.expect_response(lambda r: "/auth/google/callback" in r.url) as last_page:
        page.get_by_role("link", name="Allow").click()
    page.get_by_text("Returning to Outlook").wait_for()
    # Its policy (connector.web.security) lets Office.js run and Office frame the dialog.
    policy = last_page.value.headers["content-security-policy"]
    assert "script-src 'self' https://appsforoffice.microsoft.com;" in policy
    assert "frame-ancestors https://outlook.office.com " in policy
    for _ in range(100):
        if page.evaluate("() => window.__messages.length"):
            break
        page.wait_for_timeout(50)
    import json

    key = json.loads(page.evaluate("() => window.__messages[0]"))["apiKey"]
    me = caller.client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 200 and me.json["email"] == caller.email


# Microsoft --------------------------------------------------------------------------


@pytest.fixture
def ms_idp(app, caller, runner, monkeypatch, tmp_path):
    from tests.fakes.microsoft import CLIENT_ID, TENANT, FakeEntra, FakeMicrosoftIdP
    from tests.fakes.servers import self_signed_tls

    cert, key = self_signed_tls(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert)  # msal trusts the fake's certificate
    fake = FakeMicrosoftIdP(FakeEntra(), user_email=caller.email)
    runner.invoke(args=["orgs", "bind-entra", "--org", "Acme", "--tenant", TENANT])
    with serve(fake.app(), ssl_context=(cert, key)) as idp_url, serve(app) as base:
        app.config.update(
            PUBLIC_URL=base,
            MS_CLIENT_ID=CLIENT_ID,
            MS_CLIENT_SECRET=fake.client_secret,
            MS_AUTHORITY=f"{idp_url}/{TENANT}",
        )
        yield fake, base


@pytest.fixture
def tls_page(browser):
    context = browser.new_context(ignore_https_errors=True)
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


def ms_start(page, base: str) -> str:
    page.goto(base + "/connect")
    page.get_by_role("link", name="Sign in with Microsoft").click()
    page.get_by_role("heading", name="Permissions requested by Connector").wait_for()
    return page.get_by_role("link", name="Accept").get_attribute("href")


def test_microsoft_sign_in_links_the_account(app, ms_idp, tls_page) -> None:
    fake, base = ms_idp
    ms_start(tls_page, base)
    tls_page.get_by_role("link", name="Accept").click()
    tls_page.get_by_role("heading", name="You're connected").wait_for()
    [account] = linked(app)
    assert account.provider == "microsoft" and account.email == fake.user_email
    raw = bytes(account.refresh_token_encrypted)
    assert b"fake-ms-refresh-secret" not in raw
    cipher = app.extensions["connector.token_cipher"]
    assert cipher.decrypt(raw) == "0.fake-ms-refresh-secret"
    # msal's token cache is in shared state, encrypted too.
    from connector.store import get_store

    saved = get_store(app).get(f"msal-cache:{account.user_id}")
    assert saved and b"fake-ms-refresh-secret" not in saved
    assert "fake-ms-refresh-secret" in cipher.decrypt(saved)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("state mismatch", "expired or was already used"),
        ("replayed state", "expired or was already used"),
        ("wrong nonce", "does not belong to this sign-in"),
        ("denied consent", "cancelled"),
        ("token endpoint error", "did not complete the sign-in"),
        ("token endpoint down", "did not complete the sign-in"),
        ("token endpoint garbled", "did not complete the sign-in"),
        ("unbound tenant", "not a user of this connector"),
    ],
)
def test_microsoft_refusals_store_nothing(app, ms_idp, tls_page, case, expected) -> None:
    fake, base = ms_idp
    fake.mode = {
        "wrong nonce": "wrong_nonce",
        "token endpoint error": "token_error",
        "token endpoint down": "server_error",
        "token endpoint garbled": "html_error",
    }.get(case, "ok")
    if case == "unbound tenant":
        from tests.fakes.microsoft import OTHER_TENANT

        fake.tenant = OTHER_TENANT
    url = ms_start(tls_page, base)
    if case == "state mismatch":
        tls_page.goto(url.replace("state=", "state=forged"))
    elif case == "replayed state":
        tls_page.get_by_role("link", name="Accept").click()
        tls_page.get_by_role("heading", name="You're connected").wait_for()
        with session_scope(app) as session:
            session.execute(sa.delete(LinkedAccount))
        tls_page.goto(url)
    elif case == "denied consent":
        tls_page.get_by_role("link", name="Cancel").click()
    else:
        tls_page.get_by_role("link", name="Accept").click()
    tls_page.get_by_role("heading", name="Sign-in did not complete").wait_for()
    assert expected in tls_page.content()
    assert linked(app) == []


def test_sending_consent_is_asked_for_incrementally(app, idp, page) -> None:
    fake, base = idp
    page.goto(base + "/connect?scope=gmail.send")
    page.get_by_role("link", name="Sign in with Google").click()
    page.get_by_role("link", name="Allow").click()
    page.get_by_role("heading", name="You're connected").wait_for()
    [account] = linked(app)
    assert "https://www.googleapis.com/auth/gmail.send" in account.scopes


# Users created on sign-in, for an organization's sign-in domains ---------------------


def users(app) -> list[str]:
    from connector.orgs.models import User

    with session_scope(app) as session:
        return sorted(session.scalars(sa.select(User.email)))


@pytest.mark.parametrize(
    ("allowed", "profile", "created"),
    [
        (True, {"hd": "acme.test", "name": "Cleo Acme"}, True),
        # A consumer Google account under the same address does not speak for the domain.
        (True, {"name": "Cleo Acme"}, False),
        (True, {"hd": "other.test"}, False),
        (False, {"hd": "acme.test"}, False),
    ],
)
def test_google_sign_in_creates_users_for_allowed_domains(
    app, idp, page, runner, allowed, profile, created
) -> None:
    fake, base = idp
    fake.user_email, fake.profile = "cleo@acme.test", profile
    if allowed:
        result = runner.invoke(
            args=["orgs", "allow-domain", "--org", "Acme", "--domain", "Acme.test"]
        )
        assert "become users of Acme" in result.output
    start(page, base)
    page.get_by_role("link", name="Allow").click()
    if created:
        page.get_by_role("heading", name="You're connected").wait_for()
        assert "cleo@acme.test" in users(app)
        [account] = linked(app)
        assert account.email == "cleo@acme.test"
        from connector.orgs.models import User

        with session_scope(app) as session:
            user = session.scalar(sa.select(User).where(User.email == "cleo@acme.test"))
            assert (user.name, user.role, user.organization.name) == ("Cleo Acme", "member", "Acme")
    else:
        page.get_by_role("heading", name="Sign-in did not complete").wait_for()
        assert "cleo@acme.test" not in users(app) and linked(app) == []


@pytest.mark.parametrize(("tenant_matches", "created"), [(True, True), (False, False)])
def test_microsoft_sign_in_creates_users_only_from_the_bound_tenant(
    app, ms_idp, tls_page, runner, tenant_matches, created
) -> None:
    from tests.fakes.microsoft import OTHER_TENANT

    fake, base = ms_idp
    fake.user_email, fake.user_name = "dan@acme.test", "Dan Acme"
    if not tenant_matches:
        fake.tenant = OTHER_TENANT
    runner.invoke(args=["orgs", "allow-domain", "--org", "Acme", "--domain", "acme.test"])
    ms_start(tls_page, base)
    tls_page.get_by_role("link", name="Accept").click()
    if created:
        tls_page.get_by_role("heading", name="You're connected").wait_for()
        assert "dan@acme.test" in users(app) and len(linked(app)) == 1
    else:
        tls_page.get_by_role("heading", name="Sign-in did not complete").wait_for()
        assert "dan@acme.test" not in users(app) and linked(app) == []


def test_allow_domain_command(app, runner, make_caller) -> None:
    make_caller()
    make_caller(org="Initech", email="bob@initech.test")
    assert (
        runner.invoke(
            args=["orgs", "allow-domain", "--org", "Acme", "--domain", "acme.test"]
        ).exit_code
        == 0
    )
    again = runner.invoke(args=["orgs", "allow-domain", "--org", "Acme", "--domain", "acme.test"])
    assert again.exit_code == 0
    taken = runner.invoke(
        args=["orgs", "allow-domain", "--org", "Initech", "--domain", "acme.test"]
    )
    assert taken.exit_code != 0 and "sign-in domain of Acme" in taken.output
    bad = runner.invoke(args=["orgs", "allow-domain", "--org", "Acme", "--domain", "not a domain"])
    assert bad.exit_code != 0
    missing = runner.invoke(args=["orgs", "allow-domain", "--org", "Nope", "--domain", "x.test"])
    assert missing.exit_code != 0 and "no organization" in missing.output
    removed = runner.invoke(
        args=["orgs", "allow-domain", "--org", "Acme", "--domain", "acme.test", "--remove"]
    )
    assert "removed" in removed.output
    assert (
        runner.invoke(
            args=["orgs", "allow-domain", "--org", "Initech", "--domain", "acme.test"]
        ).exit_code
        == 0
    )


def test_two_first_sign_ins_at_once_make_one_user(app, runner, make_caller, monkeypatch) -> None:
    """The other sign-in created the user between our look-up and our insert."""
    from connector.accounts.models import Provider
    from connector.orgs.models import User
    from connector.orgs.service import find_user
    from connector.web import signin as views

    make_caller(email="cleo@acme.test")
    runner.invoke(args=["orgs", "allow-domain", "--org", "Acme", "--domain", "acme.test"])
    lookups = iter([None])
    monkeypatch.setattr(views, "find_user", lambda db, email: next(lookups, find_user(db, email)))
    identity = views.Identity(Provider.GOOGLE, "sub-cleo", "cleo@acme.test", "Cleo")
    with app.test_request_context(), session_scope(app) as session:
        user = views._link(
            session, identity, vouches_for=lambda org: True, scopes=["openid"], refresh_token="rt"
        )
        assert user is not None and user.email == "cleo@acme.test"
        assert session.scalar(sa.select(sa.func.count()).select_from(User)) == 1
    [account] = linked(app)
    assert account.email == "cleo@acme.test"


def test_a_free_mail_sign_in_domain_stored_earlier_admits_no_one(app, make_caller) -> None:
    """allow-domain refuses gmail.com now; a row stored before that must not admit anyone."""
    from connector.accounts.models import Provider
    from connector.orgs.models import SignInDomain, User
    from connector.web import signin as views

    caller = make_caller()
    with session_scope(app) as session:
        session.add(SignInDomain(organization_id=caller.org_id, domain="gmail.com"))
    identity = views.Identity(Provider.MICROSOFT, "sub-eve", "eve@gmail.com", "Eve")
    with app.test_request_context(), session_scope(app) as session:
        user = views._link(
            session, identity, vouches_for=lambda org: True, scopes=["openid"], refresh_token="rt"
        )
        assert user is None
        assert session.scalar(sa.select(User).where(User.email == "eve@gmail.com")) is None
    assert linked(app) == []


def test_sign_in_to_edit_comes_back_to_the_record_page(app, idp, caller, page) -> None:
    from connector.records.refs import RecordRef
    from connector.web.record_links import record_link
    from tests.helpers import create_contact

    _fake, base = idp
    contact = create_contact(caller)
    link = record_link(base, "test-secret", caller.user_id, RecordRef.of("contact", contact["id"]))
    page.goto(link)
    page.get_by_role("link", name="Sign in to edit").click()
    page.get_by_role("link", name="Sign in with Google").click()
    page.get_by_role("link", name="Allow").click()
    page.wait_for_url(link)
    page.get_by_role("button", name="Save").wait_for()


@pytest.mark.parametrize(
    "next_path",
    ["https://evil.test/records/1", "//evil.test/records/1", "/account", "/records/..\\x", ""],
)
def test_only_record_pages_are_returned_to(next_path: str) -> None:
    from connector.web.signin import return_path

    assert return_path(next_path) is None
