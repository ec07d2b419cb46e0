"""The Outlook task pane in a real browser (Debian's chromium, driven by Playwright), served by
the running service, with an Office mock injected before the pane's scripts run."""

from __future__ import annotations

import base64
import json
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy.orm import sessionmaker

from connector.db import make_engine
from tests.fakes.servers import serve
from tests.helpers import create_company, create_contact

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def eml() -> bytes:
    message = EmailMessage()
    message["From"] = "Hank Scorpio <hank@globex.test>"
    message["To"] = "Ann <ann@acme.test>"
    message["Subject"] = "Quote for 50 seats"
    message["Date"] = "Fri, 20 Nov 2026 10:00:00 +0000"
    message["Message-ID"] = "<outlook-1@globex.test>"
    message.set_content("Hello, please send a quote.")
    message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="rfq.pdf")
    return message.as_bytes()


OFFICE_MOCK = """
(() => {
  const config = window.__officeConfig;
  const item = config.item && {
    itemId: "AAMk-1",
    subject: config.item.subject,
    from: config.item.from, sender: config.item.from,
    to: config.item.to, cc: config.item.cc || [],
    internetMessageId: config.item.internetMessageId,
    conversationId: "conv-1",
    dateTimeCreated: "2026-11-20T10:00:00Z",
    attachments: [{ id: "att-1", name: "rfq.pdf", contentType: "application/pdf", size: 8 }],
    body: {
      getAsync: (coercion, callback) => callback({ status: "succeeded", value: config.item.html }),
    },
    getAsFileAsync: (options, callback) =>
      callback({ status: "succeeded", value: config.item.eml }),
    displayReplyFormAsync: (options, callback) => {
      window.__replies.push(options);
      callback({ status: "succeeded" });
    },
  };
  if (item && config.oldClient) {
    // Before Mailbox 1.9 only the synchronous form exists.
    delete item.displayReplyFormAsync;
    item.displayReplyForm = (options) => window.__replies.push(options);
  }
  window.__replies = [];
  window.__itemChanged = [];
  window.__themeChanged = [];
  window.Office = {
    CoercionType: { Html: "html", Text: "text" },
    EventType: { ItemChanged: "olkItemSelectedChanged",
                 DialogMessageReceived: "dialogMessageReceived",
                 OfficeThemeChanged: "officeThemeChanged" },
    onReady: (callback) => setTimeout(() => callback({ host: "Outlook" }), 0),
    context: {
      // Office's theme, where the test gives one (else the pane follows the system's).
      officeTheme: config.officeTheme || undefined,
      // Every requirement set, but nested app authentication only where the test says so.
      requirements: { isSetSupported: (name) => name !== "NestedAppAuth" || config.naa },
      ui: {
        displayDialogAsync: (url, options, callback) => {
          window.__dialogUrl = url;
          const handlers = {};
          window.__dialog = {
            addEventHandler: (type, handler) => { handlers[type] = handler; },
            close: () => { window.__dialogClosed = true; },
            send: (message) => handlers.dialogMessageReceived({ message }),
          };
          callback({ status: "succeeded", value: window.__dialog });
        },
      },
      mailbox: {
        item,
        userProfile: { emailAddress: "ann@acme.test" },
        addHandlerAsync: (type, handler) => (
          type === "officeThemeChanged" ? window.__themeChanged : window.__itemChanged
        ).push(handler),
        // Graph's id for the item, where the test gives one (Mailbox 1.3).
        convertToRestId: (id, version) => (config.item && config.item.restId) || null,
      },
    },
  };
  if (config.apiKey) localStorage.setItem("connector.apiKey", config.apiKey);
})();
"""


@pytest.fixture
def pane(app, caller, browser):
    with serve(app) as base:
        context = browser.new_context(viewport={"width": 320, "height": 900})
        page = context.new_page()
        # Office.js cannot run outside an Office host: the mock stands in for it.
        page.route(
            "https://appsforoffice.microsoft.com/**",
            lambda route: route.fulfill(
                status=200, content_type="application/javascript", body="/* mocked */"
            ),
        )

        def open_pane(
            item: dict | None, msal: str | None = None, old: bool = False, naa: bool = True
        ) -> object:
            config = {
                "apiKey": None if msal else caller.key,
                "item": item,
                "oldClient": old,
                "naa": naa,
            }
            page.add_init_script(f"window.__officeConfig = {json.dumps(config)};")
            page.add_init_script(OFFICE_MOCK)
            if msal:
                # MSAL.js needs a real Office host to broker tokens: a stand-in plays it.
                page.route(
                    "**/static/outlook/vendor/msal-browser.min.js",
                    lambda route: route.fulfill(
                        status=200, content_type="application/javascript", body=msal
                    ),
                )
            page.goto(base + "/static/outlook/taskpane.html")
            return page

        yield open_pane
        context.close()


def wait_for_replies(page, count: int = 1) -> None:
    # Polled from here: the pane's CSP forbids the eval that wait_for_function uses.
    for _ in range(100):
        if page.evaluate("() => window.__replies.length") >= count:
            return
        page.wait_for_timeout(50)
    raise AssertionError("the reply form was not opened")


def item(**overrides) -> dict:
    return {
        "subject": "Quote for 50 seats",
        "from": {"displayName": "Hank Scorpio", "emailAddress": "hank@globex.test"},
        "to": [{"displayName": "Ann", "emailAddress": "ann@acme.test"}],
        "internetMessageId": "<outlook-1@globex.test>",
        "html": "<p>Hello, please send a quote.</p>",
        "eml": base64.b64encode(eml()).decode(),
        **overrides,
    }


def test_a_users_path_through_the_pane(pane, caller) -> None:
    create_company(caller)
    contact = create_contact(caller, "Hank Scorpio", ["hank@globex.test"], job_title="CEO")
    caller.post(
        "/api/v1/templates",
        json={
            "name": "Thanks",
            "subject": "Thanks",
            "body_html": "<p>Dear {{ contact.first_name }},</p>",
        },
    )
    page = pane(item())
    page.get_by_role("heading", name="Hank Scorpio").wait_for()
    assert page.get_by_text("CEO · Globex").is_visible()

    page.get_by_role("button", name="Log email").first.click()
    page.get_by_role("form", name="Log email").get_by_role("button", name="Log email").click()
    page.get_by_text("✓ Logged on contact").wait_for()
    card = caller.get(f"/api/v1/contacts/{contact['id']}").json
    [activity] = card["activities"]
    assert activity["message_id"] == "<outlook-1@globex.test>"
    assert [a["filename"] for a in activity["attachments"]] == ["rfq.pdf"]  # the EML was sent

    page.get_by_role("button", name="Create lead").click()
    page.get_by_label("Title").fill("50 seats for Globex")
    page.get_by_label("Expected revenue").fill("12,000")
    page.get_by_role("form", name="Create lead").get_by_role("button", name="Create lead").click()
    page.get_by_text("50 seats for Globex").wait_for()
    [lead] = caller.get(f"/api/v1/contacts/{contact['id']}").json["leads"]
    assert lead["title"] == "50 seats for Globex" and lead["expected_revenue"] == 12000

    page.get_by_role("button", name="Reply with template").click()
    page.get_by_role("button", name="Thanks").click()
    # Its subject and first lines first; then Outlook's reply form, which the user sends.
    page.get_by_role("region", name="Template preview").get_by_text("Dear Hank,").wait_for()
    page.get_by_role("button", name="Open reply").click()
    wait_for_replies(page)
    replies = page.evaluate("window.__replies")
    assert replies[0]["htmlBody"] == "<p>Dear Hank,</p>"

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "outlook-taskpane.png"), full_page=True)


def test_user_data_is_escaped(pane, caller) -> None:
    create_contact(caller, '<img src=x onerror="window.__pwned=1">Hank', ["hank@globex.test"])
    page = pane(item())
    page.get_by_role("heading", name='<img src=x onerror="window.__pwned=1">Hank').wait_for()
    assert page.evaluate("window.__pwned") is None
    assert page.locator("main img").count() == 0


def test_several_people_and_an_unknown_sender(pane, caller) -> None:
    create_contact(caller, "Hank Scorpio", ["hank@globex.test"])
    page = pane(item(cc=[{"displayName": "Mia", "emailAddress": "mia@initech.test"}]))
    page.get_by_role("heading", name="In this conversation").wait_for()
    page.get_by_role("button", name="mia@initech.test").click()
    page.get_by_role("heading", name="Not in your records").wait_for()
    page.get_by_label("New company").fill("Initech")
    page.get_by_role("button", name="Create contact").click()
    page.get_by_role("heading", name="In this conversation").wait_for()
    [result] = caller.get("/api/v1/lookup?email=mia@initech.test").json["results"]
    assert result["contact"]["name"] == "Mia" and result["company"]["name"] == "Initech"


def test_no_message_selected_and_item_changed(pane, caller) -> None:
    page = pane(None)
    page.get_by_text("Select a message").wait_for()
    assert page.evaluate("window.__itemChanged.length") == 1


def test_a_wrong_key_asks_to_connect(pane, caller) -> None:
    caller.key = "ck_wrong"
    page = pane(item())
    page.get_by_role("heading", name="Connect to your records").wait_for()


def test_nested_app_authentication(app, pane, caller, runner) -> None:
    from connector.providers.microsoft.entra import EntraTokenValidator, JwksCache
    from tests.fakes.microsoft import CLIENT_ID, TENANT, FakeEntra

    entra = FakeEntra()
    with serve(entra.jwks_app()) as jwks:
        app.config["MS_CLIENT_ID"] = CLIENT_ID
        app.extensions["connector.entra_validator"] = EntraTokenValidator(
            JwksCache(jwks + "/discovery/v2.0/keys"), client_id=CLIENT_ID, scope="access_as_user"
        )
        runner.invoke(args=["orgs", "bind-entra", "--org", "Acme", "--tenant", TENANT])
        create_contact(caller, "Hank Scorpio", ["hank@globex.test"])
        token = entra.token(caller.email)
        fake_msal = """
        window.msal = { createNestablePublicClientApplication: async (config) => {
          window.__msalConfig = config;
          return {
            acquireTokenSilent: async () => { throw new Error("interaction_required"); },
            acquireTokenPopup: async (request) => {
              window.__scopes = request.scopes;
              return { accessToken: TOKEN };
            },
          };
        } };
        """.replace("TOKEN", json.dumps(token))
        page = pane(item(), msal=fake_msal)
        page.get_by_role("heading", name="Hank Scorpio").wait_for()
        assert page.evaluate("window.__msalConfig.auth.clientId") == CLIENT_ID
        assert page.evaluate("window.__scopes") == [
            f"api://127.0.0.1:8000/{CLIENT_ID}/access_as_user"
        ]


def test_vendored_msal_matches_the_pinned_package() -> None:
    root = Path(__file__).resolve().parent.parent
    installed = root / "node_modules" / "@azure" / "msal-browser" / "lib" / "msal-browser.min.js"
    if not installed.exists():
        pytest.fail("run npm install: @azure/msal-browser is not installed")
    vendored = root / "static" / "outlook" / "vendor" / "msal-browser.min.js"
    assert vendored.read_bytes() == installed.read_bytes()


def test_reply_on_an_older_client_uses_display_reply_form(pane, caller) -> None:
    create_contact(caller, "Hank Scorpio", ["hank@globex.test"])
    long_body = "<p>" + "x" * 40_000 + "</p>"
    caller.post("/api/v1/templates", json={"name": "Long", "subject": "S", "body_html": long_body})
    page = pane(item(), old=True)
    page.get_by_role("button", name="Reply with template").click()
    page.get_by_role("button", name="Long").click()
    page.get_by_role("button", name="Open reply").click()
    wait_for_replies(page)
    html = page.evaluate("window.__replies[0].htmlBody")
    assert html.startswith("<p>xxx") and len(html) <= 32_000


def test_sign_in_through_the_dialog(pane, caller) -> None:
    create_contact(caller, "Hank Scorpio", ["hank@globex.test"])
    key = caller.key
    caller.key = "ck_wrong"
    page = pane(item())
    page.get_by_role("button", name="Sign in").click()
    assert page.evaluate("() => window.__dialogUrl").endswith("/connect?client=outlook")
    page.evaluate("(key) => window.__dialog.send(JSON.stringify({ apiKey: key }))", key)
    page.get_by_role("heading", name="Hank Scorpio").wait_for()
    assert page.evaluate("() => window.__dialogClosed") is True


def test_an_outage_says_so_and_offers_to_try_again(app, pane, caller, tmp_path) -> None:
    working = app.extensions["connector.sessionmaker"]
    # The database goes away: every request of the pane is a 503 with Retry-After.
    unreachable = make_engine(f"sqlite:///{tmp_path / 'gone' / 'connector.sqlite3'}")
    app.extensions["connector.sessionmaker"] = sessionmaker(unreachable)
    page = pane(item())
    page.get_by_role("alert").wait_for()
    assert "unavailable right now" in page.get_by_role("alert").inner_text()
    # It comes back; the user's click loads the sender's card.
    app.extensions["connector.sessionmaker"] = working
    page.get_by_role("button", name="Try again").click()
    page.get_by_role("heading", name="Not in your records").wait_for()


def test_an_archived_contacts_address_offers_no_new_contact(pane, caller) -> None:
    hank = create_contact(caller, "Hank Scorpio", ["hank@globex.test"])
    assert caller.delete(f"/api/v1/contacts/{hank['id']}").status_code == 204
    page = pane(item())
    page.get_by_role("heading", name="Archived contact").wait_for()
    assert "Hank Scorpio, an archived contact" in page.locator("#archived-contact").inner_text()
    assert page.get_by_role("button", name="Create contact").count() == 0
