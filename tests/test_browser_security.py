"""What browsers get: security headers on every page, cookie flags in production, and HTML
error pages outside the API. The pages are also opened in a real browser (chromium), to see
the policy hold (no framing) without breaking them (styles, the Outlook dialog's script)."""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from connector.app import create_app
from connector.db import session_scope
from connector.errors import InvalidInput
from connector.orgs import service as orgs
from connector.records.models import RecordType
from connector.records.refs import RecordRef
from connector.web.record_links import LINK_MAX_AGE_SECONDS, record_link
from connector.web.security import DEFAULT_OFFICE_FRAME_ANCESTORS
from tests.conftest import base_config
from tests.fakes.servers import serve
from tests.test_signin import page  # noqa: F401 (a fresh browser context)

PUBLIC_URL = "https://connector.example.test"
SECRET = "a-production-secret-of-more-than-32-characters"
OFFICE = " ".join(DEFAULT_OFFICE_FRAME_ANCESTORS)
TASKPANE = Path(__file__).resolve().parent.parent / "static" / "outlook" / "taskpane.html"


def make_app(tmp_path: Path, template: Path, **config: Any) -> Iterator[Flask]:
    path = tmp_path / "connector.sqlite3"
    shutil.copy(template, path)
    app = create_app(base_config(DATABASE_URL=f"sqlite:///{path}", **config))
    yield app
    app.extensions["connector.engine"].dispose()


@pytest.fixture
def production(tmp_path: Path, sqlite_template: Path) -> Iterator[Flask]:
    yield from make_app(
        tmp_path,
        sqlite_template,
        ENV_NAME="production",
        PUBLIC_URL=PUBLIC_URL,
        SECRET_KEY=SECRET,
        # Errors are answered as in production, not raised into the test.
        PROPAGATE_EXCEPTIONS=False,
    )


@pytest.fixture
def development(tmp_path: Path, sqlite_template: Path) -> Iterator[Flask]:
    yield from make_app(tmp_path, sqlite_template, PUBLIC_URL="http://127.0.0.1:8000")


def directives(policy: str) -> dict[str, str]:
    parts = (p.strip().split(None, 1) for p in policy.split(";") if p.strip())
    return {p[0]: (p[1] if len(p) > 1 else "") for p in parts}


def assert_hardened(response: Any, frame_ancestors: str = "'none'", hsts: bool = True) -> None:
    headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    policy = directives(headers["Content-Security-Policy"])
    assert policy["frame-ancestors"] == frame_ancestors
    assert ("Strict-Transport-Security" in headers) is hsts
    if hsts:
        assert headers["Strict-Transport-Security"] == "max-age=31536000"
    if frame_ancestors == "'none'":
        assert headers["X-Frame-Options"] == "DENY"


def signed_in_client(app: Flask) -> Any:
    """A browser with a session, over https (the production cookie is Secure)."""
    with session_scope(app) as session:
        org = orgs.get_or_create_org(session, "Acme")
        user = orgs.create_user(session, org, "ann@acme.test", "Ann")
        user_id = user.id
        key = orgs.issue_key(session, user, "test")
    client = app.test_client()
    with client.session_transaction(base_url=PUBLIC_URL) as session:
        session["user_id"] = user_id
    client.user_id, client.key = user_id, key  # type: ignore[attr-defined]
    return client


# Values for the URL arguments of browser routes; a route with another argument fails the
# test below until it is given one here, so that no new page escapes it.
ARGUMENTS = {
    "record_type": "contact",
    "record_id": 1,
    "filename": "outlook/taskpane.html",
    "template_id": 1,
    "run_id": "0123456789abcdef",
    # An unfollow link's token (/unfollow/<token>): no such follower, so its 404 page.
    "token": "f1.AAAAAAAAAAAAAAAA",
}


def test_every_html_page_sends_the_security_headers(production: Flask) -> None:
    client = signed_in_client(production)
    pages = 0
    for rule in production.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.rule.startswith(("/api/", "/gmail/")):
            continue
        url = rule.rule
        for name in rule.arguments - set(rule.defaults or {}):
            assert name in ARGUMENTS, f"give {rule.rule}'s <{name}> a value in ARGUMENTS"
            url = re.sub(rf"<(?:[^:<>]+:)?{name}>", str(ARGUMENTS[name]), url)
        response = client.get(url, base_url=PUBLIC_URL)
        if response.mimetype == "text/html":
            pages += 1
            office = "/static/outlook/" in url
            assert_hardened(response, OFFICE if office else "'none'")
        else:  # JSON, scripts, images: the strictest policy and nothing framed
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            policy = directives(response.headers["Content-Security-Policy"])
            assert policy == {"default-src": "'none'", "frame-ancestors": "'none'"}
    # /connect, /account, the four sign-in pages, a record page, the task pane at least.
    assert pages >= 8
    # Error pages and a real record page too.
    contact = client.post(
        "/api/v1/contacts",
        json={"name": "Hank", "emails": ["hank@globex.test"]},
        headers={"Authorization": f"Bearer {client.key}"},
        base_url=PUBLIC_URL,
    ).json["contact"]
    ref = RecordRef(RecordType.CONTACT, contact["id"])
    link = record_link(PUBLIC_URL, SECRET, client.user_id, ref).removeprefix(PUBLIC_URL)
    for response, status in (
        (client.get(link, base_url=PUBLIC_URL), 200),
        (client.get("/account", base_url=PUBLIC_URL), 200),
        (client.get("/no/such/page", base_url=PUBLIC_URL), 404),
        (client.post("/connect", base_url=PUBLIC_URL), 405),
        (client.get(link + "x", base_url=PUBLIC_URL), 403),
    ):
        assert response.status_code == status and response.mimetype == "text/html"
        assert_hardened(response)


def test_the_task_pane_keeps_its_policy_and_only_office_may_frame_it(production: Flask) -> None:
    client = production.test_client()
    response = client.get("/static/outlook/taskpane.html", base_url=PUBLIC_URL)
    assert response.status_code == 200
    sent = directives(response.headers["Content-Security-Policy"])
    meta = re.search(
        r'http-equiv="Content-Security-Policy" content="([^"]+)"', TASKPANE.read_text()
    )
    assert meta, "the pane keeps its own <meta> policy"
    # The header is the pane's own policy (scripts from itself and Office.js only), plus
    # the frame-ancestors a <meta> cannot carry.
    assert sent == {**directives(meta.group(1)), "frame-ancestors": OFFICE}
    assert sent["script-src"] == "'self' https://appsforoffice.microsoft.com"
    for origin in ("https://outlook.office.com", "https://outlook.office365.com"):
        assert origin in OFFICE.split()
    # The sign-in dialog's first page, opened by the pane; the same page elsewhere is not.
    dialog = client.get("/connect?client=outlook", base_url=PUBLIC_URL)
    assert_hardened(dialog, OFFICE)
    assert_hardened(client.get("/connect", base_url=PUBLIC_URL))


def test_office_hosts_are_configurable(tmp_path: Path, sqlite_template: Path) -> None:
    hosts = "https://outlook.example.test, https://*.office.example.test"
    for app in make_app(tmp_path, sqlite_template, OFFICE_FRAME_ANCESTORS=hosts):
        response = app.test_client().get("/static/outlook/taskpane.html")
        policy = directives(response.headers["Content-Security-Policy"])
        assert (
            policy["frame-ancestors"]
            == "https://outlook.example.test https://*.office.example.test"
        )


def test_no_hsts_over_plain_http(development: Flask) -> None:
    response = development.test_client().get("/connect")
    assert_hardened(response, hsts=False)


def cookie_flags(response: Any) -> list[set[str]]:
    return [
        {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}
        | {f"samesite={v}" for v in re.findall(r"SameSite=(\w+)", header)}
        for header in response.headers.getlist("Set-Cookie")
    ]


def test_production_cookies_are_secure_httponly_and_lax(production: Flask) -> None:
    production.config.update(GOOGLE_OAUTH_CLIENT_ID="id", GOOGLE_OAUTH_CLIENT_SECRET="secret")
    client = signed_in_client(production)
    # The sign-in flow's browser binding, and the signed-in session with its CSRF token.
    started = client.get("/auth/google/start", base_url=PUBLIC_URL)
    assert started.status_code == 302
    account = client.get("/account", base_url=PUBLIC_URL)
    assert account.status_code == 200
    flags = cookie_flags(started) + cookie_flags(account)
    assert flags, "these responses set the session cookie"
    for cookie in flags:
        assert {"secure", "httponly", "samesite=Lax"} <= cookie, cookie


def test_development_cookies_are_httponly_and_lax_without_secure(development: Flask) -> None:
    development.config.update(GOOGLE_OAUTH_CLIENT_ID="id", GOOGLE_OAUTH_CLIENT_SECRET="secret")
    [cookie] = cookie_flags(development.test_client().get("/auth/google/start"))
    assert {"httponly", "samesite=Lax"} <= cookie and "secure" not in cookie


def expired_link(user_id: int, record_id: int) -> str:
    class EightDaysAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - LINK_MAX_AGE_SECONDS - 24 * 3600

    serializer = URLSafeTimedSerializer(SECRET, salt="record-link", signer=EightDaysAgo)
    token = serializer.dumps([user_id, "contact", record_id])
    return f"/records/contact/{record_id}?t={token}"


def assert_error_page(response: Any, status: int, says: str) -> None:
    assert response.status_code == status
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert says in html, html
    assert "Traceback" not in html and '"code"' not in html
    assert response.headers["Cache-Control"] == "no-store"
    assert_hardened(response)


def test_a_browser_gets_html_error_pages_and_the_api_keeps_json(production: Flask) -> None:
    def boom() -> str:
        raise RuntimeError("secret detail of what broke")

    def refuse() -> str:
        raise InvalidInput("That <thing> is not valid.")

    for prefix in ("", "/api/v1"):
        production.add_url_rule(f"{prefix}/boom", f"boom{prefix}", boom)
        production.add_url_rule(f"{prefix}/refuse", f"refuse{prefix}", refuse)
    client = signed_in_client(production)

    def get(url: str, **kwargs: Any) -> Any:
        return client.get(url, base_url=PUBLIC_URL, **kwargs)

    link = expired_link(client.user_id, 1)
    assert_error_page(get(link), 403, "not valid any more")
    assert_error_page(get("/records/contact/1?t=forged"), 403, "not valid any more")
    assert_error_page(get("/records/contact/1"), 403, "not valid any more")
    assert_error_page(get("/no/such/page"), 404, "Not Found")
    assert_error_page(client.post("/account", base_url=PUBLIC_URL), 405, "Method Not Allowed")
    assert client.post("/account", base_url=PUBLIC_URL).headers["Allow"]
    broken = get("/boom")
    assert_error_page(broken, 500, "Something went wrong on our side")
    assert "secret detail" not in broken.get_data(as_text=True)
    refused = get("/refuse")
    assert_error_page(refused, 400, "That &lt;thing&gt; is not valid.")

    # The API and the Gmail add-on keep the one JSON error shape.
    for response, status in (
        (get("/api/v1/boom"), 500),
        (get("/api/v1/refuse"), 400),
        (get("/api/v1/no-such-thing"), 404),
        (get("/gmail/homepage"), 405),
    ):
        assert response.status_code == status and response.mimetype == "application/json"
        assert set(response.json) >= {"code", "status", "message"}
        assert "secret detail" not in json.dumps(response.json)
    # A script that asks for JSON outside the API gets JSON too.
    asked = get("/no/such/page", headers={"Accept": "application/json"})
    assert asked.status_code == 404 and asked.json["code"] == 404


# In a real browser ----------------------------------------------------------------------


def test_pages_render_under_their_policy_and_refuse_to_be_framed(production, page) -> None:  # noqa: F811
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security" in m.text else 0)
    with serve(production) as base:
        production.config["PUBLIC_URL"] = base
        page.goto(base + "/connect")
        # The page's inline styles are allowed: the button is styled, nothing was refused.
        background = page.eval_on_selector("a.button", "a => getComputedStyle(a).backgroundColor")
        assert background == "rgb(15, 108, 189)"
        assert violations == []
        # Framed by a page of another origin: the browser refuses to show it.
        outer = Flask("outer")
        outer.add_url_rule("/", "outer", lambda: f'<iframe src="{base}/connect"></iframe>')
        with serve(outer) as elsewhere:
            page.goto(elsewhere)
            page.wait_for_timeout(500)
            framed = page.frame_locator("iframe").get_by_role("link", name="Sign in with Google")
            assert framed.count() == 0
        assert any("frame-ancestors" in v for v in violations), violations
