"""Sending a reply from Outlook through Microsoft Graph, as the user, with their stored consent.

Entra plays over TLS (msal insists on https); Graph over http on loopback. Both
are this suite's fakes: the tokens Graph accepts are the ones the fake Entra issued.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from connector.accounts import service as accounts
from connector.accounts.models import LinkedAccount, Provider
from connector.activities.models import Activity
from connector.db import session_scope
from connector.orgs.models import User
from connector.store import RedisStore, get_store
from tests.fakes.microsoft import CLIENT_ID, TENANT, FakeEntra, FakeGraph, FakeMicrosoftIdP
from tests.fakes.servers import self_signed_tls, serve
from tests.helpers import create_contact
from tests.test_templates import make_template

ORIGINAL_ID = "AAMkAGI2THVSAAA-_="
ORIGINAL_MESSAGE_ID = "<CAF=original@mail.globex.test>"


@pytest.fixture
def graph(app, caller, runner, monkeypatch, tmp_path) -> Any:
    cert, key = self_signed_tls(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", cert)  # msal trusts the fake's certificate
    idp = FakeMicrosoftIdP(FakeEntra(), user_email=caller.email)
    fake = FakeGraph(idp)
    fake.add_message(
        ORIGINAL_ID,
        internetMessageId=ORIGINAL_MESSAGE_ID,
        references="<earlier@mail.globex.test>",
        conversationId="AAQkConversation1",
        subject="Quote for 50 seats",
        body="<p>Could you send a quote?</p>",
        **{"from": {"emailAddress": {"name": "Hank Scorpio", "address": "hank@globex.test"}}},
    )
    runner.invoke(args=["orgs", "bind-entra", "--org", "Acme", "--tenant", TENANT])
    with serve(idp.app(), ssl_context=(cert, key)) as idp_url, serve(fake.app()) as graph_url:
        app.config.update(
            MS_CLIENT_ID=CLIENT_ID,
            MS_CLIENT_SECRET=idp.client_secret,
            MS_AUTHORITY=f"{idp_url}/{TENANT}",
            GRAPH_API_URL=graph_url + "/v1.0",
        )
        yield fake


def link_microsoft(
    app, caller, scopes=("User.Read", "Mail.ReadWrite", "Mail.Send", "openid")
) -> None:
    """A Microsoft account linked at sign-in: its refresh token, no msal cache yet."""
    with session_scope(app) as session:
        user = session.get(User, caller.user_id)
        accounts.link_account(
            session,
            app.extensions["connector.token_cipher"],
            user,
            Provider.MICROSOFT,
            "ms-oid",
            caller.email,
            list(scopes),
            "0.fake-ms-refresh-secret",
        )


@pytest.fixture
def reply_to(caller) -> dict[str, Any]:
    contact = create_contact(caller, "Hank Scorpio", ["hank@globex.test"])
    template = make_template(
        caller, body="<p>Dear {{ contact.first_name }},</p><p>here is the quote.</p>"
    ).json
    return {
        "message_id": ORIGINAL_ID,
        "template_id": template["id"],
        "record": {"type": "contact", "id": contact["id"]},
    }


def activities(app) -> list[Activity]:
    with session_scope(app) as session:
        return list(session.scalars(sa.select(Activity)))


def test_send_replies_in_the_thread_and_logs_the_reply(app, caller, graph, reply_to) -> None:
    link_microsoft(app, caller)
    response = caller.post("/api/v1/outlook/replies", json=reply_to)
    assert response.status_code == 201, response.json
    assert response.json["sent"] is True and response.json["subject"] == "RE: Quote for 50 seats"
    # Threading: Exchange's createReply on the message replied to, then send.
    [sent] = graph.sent
    headers = {h["name"]: h["value"] for h in sent["internetMessageHeaders"]}
    assert headers["In-Reply-To"] == ORIGINAL_MESSAGE_ID
    assert headers["References"] == "<earlier@mail.globex.test> " + ORIGINAL_MESSAGE_ID
    assert sent["conversationId"] == "AAQkConversation1"
    assert sent["toRecipients"][0]["emailAddress"]["address"] == "hank@globex.test"
    # Our text above the quoted original.
    body = sent["body"]["content"]
    assert body.index("Dear Hank") < body.index("Could you send a quote?")
    assert body.startswith('<html><head></head><body dir="ltr"><p>Dear Hank,</p>')
    # The access token came from the stored refresh token, for both permissions.
    [grant] = graph.idp.token_requests
    assert grant["grant_type"] == "refresh_token"
    assert {"Mail.ReadWrite", "Mail.Send"} <= set(grant["scope"].split())
    assert set(graph.bearers) == {"eyJ.fake-graph-access-1"}
    # The sent reply is logged on the contact, under the Message-ID it travels with.
    [activity] = activities(app)
    assert activity.message_id == "<draft1@fake.outlook.test>"
    assert activity.subject == "RE: Quote for 50 seats"
    assert "Dear Hank" in activity.body_html and "Could you send" not in activity.body_html
    logged = caller.get(
        "/api/v1/emails/logged", query_string={"message_id": "<draft1@fake.outlook.test>"}
    ).json
    assert logged["logged"] and logged["activity"]["records"] == [reply_to["record"]]


def test_send_goes_through_the_one_replies_service(
    app, caller, graph, reply_to, monkeypatch
) -> None:
    """Outlook's send and Gmail's share connector.replies.service.send_reply: here it gets
    the user's Exchange mailbox, through Graph (test_gmail checks Gmail's side)."""
    from connector.providers.microsoft.graph import GraphMailbox
    from connector.records.models import RecordType
    from connector.records.refs import RecordRef
    from connector.replies import service

    calls = []
    send_reply = service.send_reply

    def spy(ctx, mailbox, **kwargs):
        calls.append((mailbox, kwargs))
        return send_reply(ctx, mailbox, **kwargs)

    monkeypatch.setattr(service, "send_reply", spy)
    link_microsoft(app, caller)
    response = caller.post("/api/v1/outlook/replies", json=reply_to)
    assert response.status_code == 201, response.json
    [(mailbox, kwargs)] = calls
    assert isinstance(mailbox, GraphMailbox)
    assert kwargs["message_id"] == ORIGINAL_ID
    assert kwargs["record"] == RecordRef(RecordType.CONTACT, reply_to["record"]["id"])
    assert len(graph.sent) == 1 and len(activities(app)) == 1


def test_the_token_is_cached_for_every_worker_and_refresh_tokens_rotate(
    app, caller, graph, reply_to
) -> None:
    link_microsoft(app, caller)
    assert caller.post("/api/v1/outlook/replies", json=reply_to).status_code == 201
    assert caller.post("/api/v1/outlook/replies", json=reply_to).status_code == 201
    # The second send took the access token from msal's cache in shared state.
    assert len(graph.idp.token_requests) == 1
    assert graph.bearers == ["eyJ.fake-graph-access-1"] * 6
    cipher = app.extensions["connector.token_cipher"]
    saved = get_store(app).get(f"msal-cache:{caller.user_id}")
    assert saved and b"fake-graph-access" not in saved
    assert "eyJ.fake-graph-access-1" in cipher.decrypt(saved)
    with session_scope(app) as session:
        account = session.scalar(sa.select(LinkedAccount))
        assert cipher.decrypt(account.refresh_token_encrypted) == "0.fake-ms-refresh-rotated-1"


@pytest.mark.parametrize(
    "scopes",
    [
        ("User.Read", "openid"),
        # Sending alone is not enough: createReply makes a draft, which needs Mail.ReadWrite.
        ("User.Read", "Mail.Send"),
    ],
)
def test_without_consent_to_send_the_pane_is_told_where_to_sign_in(
    app, caller, graph, reply_to, scopes
) -> None:
    link_microsoft(app, caller, scopes=scopes)
    response = caller.post("/api/v1/outlook/replies", json=reply_to)
    assert response.status_code == 403
    assert response.json["reason"] == "consent_required"
    assert response.json["sign_in_url"].endswith("/connect?client=outlook&scope=mail.send")
    assert response.json["message"].startswith("Allow the connector to send mail")
    assert graph.sent == [] and graph.bearers == [] and activities(app) == []


def test_no_linked_account_needs_consent_too(app, caller, graph, reply_to) -> None:
    response = caller.post("/api/v1/outlook/replies", json=reply_to)
    assert response.status_code == 403 and response.json["reason"] == "consent_required"


@pytest.mark.parametrize(
    "case",
    ["revoked", "consent withdrawn", "graph refuses the token", "graph refuses to send"],
)
def test_a_revoked_consent_asks_to_sign_in_again(app, caller, graph, reply_to, case) -> None:
    link_microsoft(app, caller)
    if case == "revoked":
        graph.idp.mode = "revoked"
    elif case == "consent withdrawn":
        # The stored grant no longer covers Mail.ReadWrite: Entra says invalid_grant.
        graph.idp.refresh_tokens["0.fake-ms-refresh-secret"] = {"User.Read", "Mail.Send"}
    elif case == "graph refuses the token":
        graph.mode = "unauthorized"
    else:
        graph.mode = "send_refused"
    response = caller.post("/api/v1/outlook/replies", json=reply_to)
    assert response.status_code == 403, response.json
    assert response.json["reason"] == "consent_required"
    assert graph.sent == [] and activities(app) == []
    # A draft made before the refusal is not left in the user's Drafts.
    assert graph.drafts == {}


@pytest.mark.parametrize(
    ("change", "status", "message"),
    [
        ({"message_id": "AAMkGone"}, 404, "no longer in your mailbox"),
        ({"message_id": "not-an-exchange-id"}, 400, "does not know that message"),
        ({"template_id": 999_999}, 404, "template"),
        ({"record": {"type": "contact", "id": 999_999}}, 404, "no contact"),
        ({"record": {"type": "planet", "id": 1}}, 400, "not valid"),
        ({"message_id": ""}, 400, "not valid"),
    ],
)
def test_bad_requests_send_nothing(app, caller, graph, reply_to, change, status, message) -> None:
    link_microsoft(app, caller)
    response = caller.post("/api/v1/outlook/replies", json={**reply_to, **change})
    assert response.status_code == status, response.json
    assert message in response.json["message"].lower()
    assert graph.sent == [] and activities(app) == []


@pytest.mark.parametrize("mode", ["error", "patch_error"])
def test_graph_failing_before_the_send_is_a_502_and_leaves_no_draft(
    app, caller, graph, reply_to, mode
) -> None:
    link_microsoft(app, caller)
    graph.mode = mode
    response = caller.post("/api/v1/outlook/replies", json=reply_to)
    assert response.status_code == 502
    assert "nothing was sent" in response.json["message"]
    assert "reason" not in response.json
    assert graph.sent == [] and graph.drafts == {} and activities(app) == []
    # The refresh token Entra rotated on the way is kept all the same.
    with session_scope(app) as session:
        account = session.scalar(sa.select(LinkedAccount))
        cipher = app.extensions["connector.token_cipher"]
        assert cipher.decrypt(account.refresh_token_encrypted) == "0.fake-ms-refresh-rotated-1"


@pytest.mark.parametrize("mode", ["send_error", "send_hangs"])
def test_a_send_without_an_answer_is_reported_as_unconfirmed(
    app, caller, graph, reply_to, mode, monkeypatch
) -> None:
    from connector.providers.microsoft import graph as graph_module

    monkeypatch.setattr(graph_module, "TIMEOUT_SECONDS", 0.5)
    link_microsoft(app, caller)
    graph.mode, graph.hang_seconds = mode, 1.5
    response = caller.post("/api/v1/outlook/replies", json=reply_to)
    assert response.status_code == 502
    assert response.json["reason"] == "send_unconfirmed"
    assert "Look in Sent Items" in response.json["message"]
    # Exchange did send it: the user is not told otherwise, and nothing is logged twice.
    assert len(graph.sent) == 1 and activities(app) == []


def test_entra_failing_is_a_502_not_a_sign_in(app, caller, graph, reply_to) -> None:
    link_microsoft(app, caller)
    graph.idp.mode = "server_error"
    response = caller.post("/api/v1/outlook/replies", json=reply_to)
    assert response.status_code == 502 and "reason" not in response.json
    assert graph.sent == [] and activities(app) == []


def test_another_organizations_record_is_not_replied_for(
    app, caller, make_caller, graph, reply_to
) -> None:
    link_microsoft(app, caller)
    other = make_caller(org="Initech", email="bob@initech.test")
    theirs = create_contact(other, "Milton", ["milton@initech.test"])
    response = caller.post(
        "/api/v1/outlook/replies",
        json={**reply_to, "record": {"type": "contact", "id": theirs["id"]}},
    )
    assert response.status_code == 404 and graph.sent == []


def test_without_a_record_the_reply_is_sent_and_not_logged(app, caller, graph, reply_to) -> None:
    link_microsoft(app, caller)
    response = caller.post("/api/v1/outlook/replies", json={**reply_to, "record": None})
    assert response.status_code == 201
    assert response.json["activity_id"] is None and response.json["records"] == []
    assert len(graph.sent) == 1 and activities(app) == []


# In the browser ----------------------------------------------------------------------

from tests.test_outlook_taskpane import ARTIFACTS, item, pane  # noqa: E402, F401
from tests.test_signin import linked, tls_page  # noqa: E402, F401


def wait_until(page, script: str) -> Any:
    # Polled from here: the pane's CSP forbids the eval that wait_for_function uses.
    for _ in range(200):
        value = page.evaluate(script)
        if value:
            return value
        page.wait_for_timeout(50)
    raise AssertionError(f"never true: {script}")


def test_the_pane_previews_asks_for_consent_then_sends(app, caller, graph, reply_to, pane):  # noqa: F811
    # An Outlook without nested app authentication: the pane signs in through the dialog.
    page = pane(item(restId=ORIGINAL_ID), naa=False)
    page.get_by_role("heading", name="Hank Scorpio").wait_for()
    page.get_by_role("button", name="Reply with template").click()
    page.get_by_role("button", name="Send Hello now").click()
    preview = page.get_by_role("region", name="Send reply")
    preview.get_by_text("Dear Hank,").wait_for()
    preview.get_by_text("To hank@globex.test, in this conversation", exact=False).wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "outlook-send-preview.png"), full_page=True)
    preview.get_by_role("button", name="Send now").click()
    # No consent yet: the pane offers the sign-in dialog, asking for the mail permissions.
    consent = page.get_by_role("region", name="Allow sending")
    page.screenshot(path=str(ARTIFACTS / "outlook-send-consent.png"), full_page=True)
    consent.get_by_role("button", name="Sign in to send").click()
    url = wait_until(page, "() => window.__dialogUrl")
    assert url.endswith("/connect?client=outlook&scope=mail.send")
    assert graph.sent == []
    # What the dialog's sign-in does (driven for real in the test below); then its key.
    link_microsoft(app, caller)
    page.evaluate("(key) => window.__dialog.send(JSON.stringify({ apiKey: key }))", caller.key)
    page.get_by_text("Reply sent and logged.").wait_for()
    [sent] = graph.sent
    assert "Dear Hank" in sent["body"]["content"]
    assert len(activities(app)) == 1


def test_a_pane_without_graph_ids_offers_no_send(app, caller, reply_to, pane):  # noqa: F811
    page = pane(item(), naa=False)
    page.get_by_role("heading", name="Hank Scorpio").wait_for()
    page.get_by_role("button", name="Reply with template").click()
    page.get_by_role("button", name="Hello").wait_for()
    assert page.get_by_role("button", name="Send Hello now").count() == 0


def test_signing_in_to_send_asks_microsoft_for_mail_send(app, caller, graph, reply_to, tls_page):  # noqa: F811
    with serve(app) as base:
        app.config["PUBLIC_URL"] = base
        tls_page.goto(base + "/connect?client=outlook&scope=mail.send")
        tls_page.get_by_role("link", name="Sign in with Microsoft").click()
        tls_page.get_by_role("link", name="Accept").click()
        tls_page.get_by_text("Returning to Outlook").wait_for()
    [account] = linked(app)
    assert {"Mail.ReadWrite", "Mail.Send"} <= set(account.scopes)
    [code_grant] = graph.idp.token_requests
    assert {"Mail.ReadWrite", "Mail.Send"} <= set(code_grant["scope"].split())
    # The access token from sign-in is in msal's shared cache: sending needs no refresh.
    assert caller.post("/api/v1/outlook/replies", json=reply_to).status_code == 201
    assert len(graph.idp.token_requests) == 1
    assert graph.bearers[-1] == "eyJ.fake-graph-access"


def test_the_pane_does_not_offer_a_second_send_when_the_first_is_unconfirmed(
    app,
    caller,
    graph,
    reply_to,
    pane,  # noqa: F811
) -> None:
    link_microsoft(app, caller)
    graph.mode = "send_error"
    page = pane(item(restId=ORIGINAL_ID), naa=False)
    page.get_by_role("heading", name="Hank Scorpio").wait_for()
    page.get_by_role("button", name="Reply with template").click()
    page.get_by_role("button", name="Send Hello now").click()
    page.get_by_role("region", name="Send reply").get_by_role("button", name="Send now").click()
    notice = page.get_by_role("region", name="Send not confirmed")
    notice.get_by_text("Look in Sent Items", exact=False).wait_for()
    assert page.get_by_role("button", name="Send now").count() == 0
    assert len(graph.sent) == 1 and activities(app) == []


def test_a_template_past_its_bounds_sends_nothing(app, caller, graph) -> None:
    """Outlook's send renders through the same bounded render as the API, before sending."""
    link_microsoft(app, caller)
    contact = create_contact(caller, "Hank Scorpio", ["hank@globex.test"])
    loops = "{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}"
    template = make_template(
        caller, body=f"{{% if contact.first_name == 'Hank' %}}{loops}{{% endif %}}"
    ).json
    response = caller.post(
        "/api/v1/outlook/replies",
        json={
            "message_id": ORIGINAL_ID,
            "template_id": template["id"],
            "record": {"type": "contact", "id": contact["id"]},
        },
    )
    assert response.status_code == 400
    assert "loops run more than 100,000 times" in response.json["message"]
    assert graph.sent == [] and activities(app) == []


def test_with_the_shared_store_down_the_stored_refresh_token_serves(
    app, caller, graph, reply_to
) -> None:
    # msal's token cache lives in the shared store; it only saves token requests.
    link_microsoft(app, caller)
    app.extensions["connector.store"] = RedisStore("redis://127.0.0.1:1/0")
    response = caller.post("/api/v1/outlook/replies", json=reply_to)
    assert response.status_code == 201, response.json
    [grant] = graph.idp.token_requests
    assert grant["grant_type"] == "refresh_token"
    assert len(graph.sent) == 1 and len(activities(app)) == 1


@pytest.mark.parametrize("failing", ["logging", "commit"])
def test_a_reply_sent_when_the_records_go_away_is_not_an_invitation_to_resend(
    app, caller, graph, reply_to, monkeypatch, failing
) -> None:
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.orm import Session

    from connector.replies import service as outlook_service

    def gone(*_args, **_kwargs):
        raise OperationalError("INSERT", {}, Exception("server closed the connection"))

    commit = Session.commit

    def commit_fails_once_sent(session: Session) -> None:
        if graph.sent:
            gone()
        commit(session)

    link_microsoft(app, caller)
    with monkeypatch.context() as patch:
        if failing == "logging":
            patch.setattr(outlook_service.activities, "log_email", gone)
        else:
            patch.setattr(Session, "commit", commit_fails_once_sent)
        response = caller.post("/api/v1/outlook/replies", json=reply_to)
    assert response.status_code == 503, response.json
    assert response.json["reason"] == "sent_not_logged"
    assert "Do not send it again" in response.json["message"]
    assert "Retry-After" not in response.headers
    assert len(graph.sent) == 1
    if failing == "logging":
        assert activities(app) == []
