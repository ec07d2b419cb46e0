"""The Gmail add-on end to end, with Google played locally: signed tokens, a certificates
endpoint and a Gmail API serving real MIME messages, all on 127.0.0.1."""

from __future__ import annotations

import base64
import email
import time
from collections.abc import Iterator
from email import policy
from email.message import EmailMessage
from typing import Any

import pytest
from google.apps.card_v1.types import Card
from google.protobuf import json_format

from connector.providers.google.tokens import GoogleTokenVerifier, google_certificates
from tests.fakes.google import CLIENT_ID, SERVICE_ACCOUNT, FakeGmail, FakeGoogle, unsigned
from tests.fakes.servers import serve
from tests.helpers import create_company, create_contact, create_lead

PUBLIC_URL = "https://connector.example.test"


@pytest.fixture(scope="module")
def google() -> Iterator[tuple[FakeGoogle, str]]:
    fake = FakeGoogle()
    with serve(fake.certs_app()) as url:
        yield fake, url + "/oauth2/v1/certs"


@pytest.fixture
def gmail() -> Iterator[tuple[FakeGmail, str]]:
    fake = FakeGmail()
    with serve(fake.app()) as url:
        yield fake, url + "/"


@pytest.fixture
def addon(app, client, caller, google, gmail) -> Any:
    fake_google, certs_url = google
    fake_gmail, gmail_url = gmail
    app.config.update(
        PUBLIC_URL=PUBLIC_URL,
        GOOGLE_SERVICE_ACCOUNT=SERVICE_ACCOUNT,
        GOOGLE_CLIENT_ID=CLIENT_ID,
        GMAIL_API_URL=gmail_url,
    )
    app.extensions["connector.google_verifier"] = GoogleTokenVerifier(
        google_certificates(certs_url)
    )
    return Addon(client, fake_google, fake_gmail, caller)


def validate_cards(body: Any) -> int:
    """Parse every card in a response with Google's Card proto; return how many there were."""
    found = 0
    if isinstance(body, dict):
        for key, value in body.items():
            if key in ("pushCard", "updateCard"):
                json_format.ParseDict(value, Card.pb(Card()))  # unknown fields raise
                widgets = sum(len(s.get("widgets", [])) for s in value.get("sections", []))
                assert widgets <= 100
                found += 1
            else:
                found += validate_cards(value)
    elif isinstance(body, list):
        found += sum(validate_cards(item) for item in body)
    return found


class Addon:
    """Plays Google: signs the tokens and posts event objects like the add-on runtime."""

    def __init__(self, client, google: FakeGoogle, gmail: FakeGmail, caller) -> None:
        self.client, self.google, self.gmail, self.caller = client, google, gmail, caller
        self.user_email = caller.email
        # The user's zone as Google sends it ({"id": ..., "offset": ms}); None: not sent.
        self.time_zone: dict[str, Any] | None = None

    def event(
        self,
        message_id: str | None = None,
        form: dict[str, Any] | None = None,
        parameters: dict[str, str] | None = None,
        **gmail_fields: Any,
    ) -> dict[str, Any]:
        event: dict[str, Any] = {
            "commonEventObject": {"hostApp": "GMAIL", "platform": "WEB"},
            "authorizationEventObject": {
                "userOAuthToken": "user-oauth-token",
                "userIdToken": self.google.user_token(self.user_email),
            },
        }
        if self.time_zone is not None:
            event["commonEventObject"]["timeZone"] = self.time_zone
        if form:
            event["commonEventObject"]["formInputs"] = form
        if parameters:
            event["commonEventObject"]["parameters"] = parameters
        if message_id:
            event["gmail"] = {
                "messageId": message_id,
                "threadId": "thread-1",
                "accessToken": "message-access-token",
                **gmail_fields,
            }
        return event

    def post(self, path: str, event: dict[str, Any], token: str | None = "default") -> Any:
        if token == "default":
            token = self.google.system_token(PUBLIC_URL + path)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.client.post(path, json=event, headers=headers)
        if response.status_code == 200:
            validate_cards(response.json)
        return response

    def trigger(self, name: str, message_id: str | None = None, **kwargs: Any) -> dict[str, Any]:
        response = self.post(f"/gmail/{name}", self.event(message_id, **kwargs))
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.json

    def call(
        self,
        action: dict[str, Any],
        message_id: str | None = "m1",
        form: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Press a button: post to its function with its parameters, as Google does."""
        path = action["function"].removeprefix(PUBLIC_URL)
        parameters = {p["key"]: p["value"] for p in action.get("parameters", [])}
        response = self.post(path, self.event(message_id, form=form, parameters=parameters))
        assert response.status_code == 200, response.get_data(as_text=True)
        assert "renderActions" in response.json and "action" not in response.json
        return response.json


def pushed(body: dict[str, Any]) -> dict[str, Any]:
    navigations = (body.get("action") or body["renderActions"]["action"])["navigations"]
    return next(
        n.get("pushCard") or n.get("updateCard")
        for n in navigations
        if "pushCard" in n or "updateCard" in n
    )


def find_action(card: dict[str, Any], label: str) -> dict[str, Any]:
    for section in card["sections"]:
        for widget in section["widgets"]:
            for button in widget.get("buttonList", {}).get("buttons", []):
                if button["text"] == label:
                    return button["onClick"]["action"]
            decorated = widget.get("decoratedText", {})
            if decorated.get("text") == label and "action" in decorated.get("onClick", {}):
                return decorated["onClick"]["action"]
            end = decorated.get("button", {})
            if f"{decorated.get('text')}/{end.get('text')}" == label:
                return end["onClick"]["action"]
    raise AssertionError(f"no {label!r} in {card}")


def strings(*values: str) -> dict[str, Any]:
    return {"stringInputs": {"value": list(values)}}


def mime(
    sender: str = "Hank Scorpio <hank@globex.test>",
    to: str = "ann@acme.test",
    cc: str = "",
    message_id: str = "<m1@globex.test>",
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    if cc:
        message["Cc"] = cc
    message["Subject"] = "Quote for 50 seats"
    message["Date"] = "Fri, 20 Nov 2026 10:00:00 +0000"
    message["Message-ID"] = message_id
    message.set_content("Hello,\nplease send a quote.")
    message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="rfq.pdf")
    return message.as_bytes()


# Trust -------------------------------------------------------------------------------


def test_bad_tokens_are_401_without_a_card(addon) -> None:
    google = addon.google
    audience = PUBLIC_URL + "/gmail/homepage"
    now_claims = {
        "iss": "https://accounts.google.com",
        "aud": audience,
        "email": SERVICE_ACCOUNT,
        "iat": 0,
        "exp": 9999999999,
    }
    bad = {
        "forged": google.system_token(audience, key=google.other_key),
        "expired": google.system_token(audience, lifetime=-3600),
        "wrong audience": google.system_token(PUBLIC_URL + "/gmail/message"),
        "wrong issuer": google.system_token(audience, issuer="https://evil.example"),
        "wrong service account": google.system_token(
            audience, email_address="someone@gcp-sa-gsuiteaddons.iam.gserviceaccount.com"
        ),
        "unsigned": unsigned(now_claims),
        "garbage": "not-a-token",
        "missing": None,
    }
    for what, token in bad.items():
        response = addon.post("/gmail/homepage", addon.event(), token=token)
        assert response.status_code == 401, what
        assert "action" not in response.json and "renderActions" not in response.json


def test_bad_user_token_is_401(addon) -> None:
    event = addon.event()
    event["authorizationEventObject"]["userIdToken"] = addon.google.user_token(
        addon.user_email, audience="another-client"
    )
    assert addon.post("/gmail/homepage", event).status_code == 401
    del event["authorizationEventObject"]["userIdToken"]
    assert addon.post("/gmail/homepage", event).status_code == 401


def test_certificates_are_fetched_once(addon) -> None:
    before = addon.google.cert_fetches
    for _ in range(3):
        addon.trigger("homepage")
    assert addon.google.cert_fetches - before <= 1


def test_unknown_user_gets_a_card_that_explains(addon) -> None:
    addon.user_email = "stranger@acme.test"
    card = pushed(addon.trigger("homepage"))
    assert card["header"]["title"] == "No access yet"
    [button] = card["sections"][0]["widgets"][1]["buttonList"]["buttons"]
    assert button["onClick"]["openLink"] == {
        "url": f"{PUBLIC_URL}/connect",
        "openAs": "OVERLAY",
        "onClose": "RELOAD",
    }


def test_tampered_state_is_refused(addon) -> None:
    create_contact(addon.caller)
    addon.gmail.add("m1", mime())
    card = pushed(addon.trigger("message", "m1"))
    action = find_action(card, "Log email")
    action["parameters"][0]["value"] = action["parameters"][0]["value"][:-2] + "xx"
    body = addon.call(action)
    assert "out of date" in body["renderActions"]["action"]["notification"]["text"]


# Cards ------------------------------------------------------------------------------


def test_homepage_lists_tasks_and_leads(addon) -> None:
    contact = create_contact(addon.caller)
    create_lead(addon.caller, contact_id=contact["id"], title="Renewal")
    addon.caller.post("/api/v1/tasks", json={"title": "Call Hank", "due_date": "2020-01-01"})
    body = addon.trigger("homepage")
    card = pushed(body)
    text = str(card)
    assert "Call Hank" in text and "Renewal" in text and "Overdue" in text
    done = addon.call(find_action(card, "Call Hank/Done"), message_id=None)
    assert "Done: Call Hank" in done["renderActions"]["action"]["notification"]["text"]
    assert addon.caller.get("/api/v1/tasks").json == []


def test_no_open_message_falls_back_to_the_homepage(addon) -> None:
    assert pushed(addon.trigger("message"))["name"] == "homepage"


def test_known_sender_card(addon) -> None:
    create_company(addon.caller)
    contact = create_contact(addon.caller, "Hank <Scorpio>", ["hank@globex.test"], job_title="CEO")
    create_lead(addon.caller, contact_id=contact["id"], title="50 seats", expected_revenue=5000)
    addon.gmail.add("m1", mime())
    card = pushed(addon.trigger("message", "m1"))
    # Record data is escaped in every field a person reads, the header's title included.
    assert card["header"]["title"] == "Hank &lt;Scorpio&gt;"
    assert card["header"]["subtitle"] == "CEO · Globex"
    assert "50 seats" in str(card)
    request = addon.gmail.requests[0]
    assert request["args"]["format"] == ["metadata"]
    assert request["gmail_access_token"] == "message-access-token"
    assert request["authorization"] == "Bearer user-oauth-token"


def test_several_people_give_a_picker(addon) -> None:
    create_contact(addon.caller)
    addon.gmail.add("m1", mime(to="ann@acme.test, carl@initech.test", cc="dora@gmail.com"))
    card = pushed(addon.trigger("message", "m1"))
    assert card["header"]["title"] == "In this conversation"
    people = [w["decoratedText"]["text"] for w in card["sections"][0]["widgets"]]
    assert people == ["Hank Scorpio", "carl@initech.test", "dora@gmail.com"]
    body = addon.call(find_action(card, "carl@initech.test"))
    unknown = pushed(body)
    assert unknown["header"]["title"] == "Not in your records"


def test_unknown_sender_create_contact(addon) -> None:
    addon.gmail.add("m1", mime(sender="Mia Wong <mia@initech.test>"))
    card = pushed(addon.trigger("message", "m1"))
    assert card["name"] == "unknown"
    body = addon.call(
        find_action(card, "Create contact"),
        form={
            "name": strings("Mia Wong"),
            "email": strings("mia@initech.test"),
            "company_name": strings("Initech"),
        },
    )
    assert "Contact created" in body["renderActions"]["action"]["notification"]["text"]
    [result] = addon.caller.get("/api/v1/lookup?email=mia@initech.test").json["results"]
    assert result["contact"]["name"] == "Mia Wong"
    assert result["company"]["name"] == "Initech"


def test_search(addon) -> None:
    create_contact(addon.caller)
    card = pushed(addon.trigger("homepage"))
    body = addon.call(find_action(card, "Search"), message_id=None, form={"query": strings("hank")})
    results = pushed(body)
    assert "Hank Scorpio" in str(results)
    opened = addon.call(find_action(results, "Hank Scorpio"), message_id=None)
    assert pushed(opened)["header"]["title"] == "Hank Scorpio"


# Actions that change records ---------------------------------------------------------


def test_log_email_end_to_end(addon) -> None:
    contact = create_contact(addon.caller)
    addon.gmail.add("m1", mime())
    card = pushed(addon.trigger("message", "m1"))
    form_card = pushed(addon.call(find_action(card, "Log email")))
    body = addon.call(
        find_action(form_card, "Log email"), form={"records": strings(f"contact:{contact['id']}")}
    )
    assert body["renderActions"]["action"]["notification"]["text"] == "Email logged."
    assert any(r["args"].get("format") == ["raw"] for r in addon.gmail.requests)
    [result] = addon.caller.get("/api/v1/lookup?email=hank@globex.test").json["results"]
    [activity] = result["activities"]
    assert activity["message_id"] == "<m1@globex.test>"
    assert [a["filename"] for a in activity["attachments"]] == ["rfq.pdf"]
    again = pushed(addon.trigger("message", "m1"))
    assert "This email is logged" in str(again)
    second = addon.call(
        find_action(form_card, "Log email"), form={"records": strings(f"contact:{contact['id']}")}
    )
    assert second["renderActions"]["action"]["notification"]["text"] == "Already logged there."


def test_create_lead_end_to_end(addon) -> None:
    company = create_company(addon.caller)
    addon.gmail.add("m1", mime())
    card = pushed(addon.trigger("message", "m1"))  # the company, by the sender's domain
    form = pushed(addon.call(find_action(card, "Create lead")))
    body = addon.call(
        find_action(form, "Create lead"),
        form={"title": strings("Quote: 50 seats"), "expected_revenue": strings("12,500")},
    )
    assert "Lead created: Quote: 50 seats" in str(body)
    [result] = addon.caller.get("/api/v1/lookup?email=hank@globex.test").json["results"]
    assert result["contact"]["name"] == "Hank Scorpio"
    assert result["company"]["id"] == company["id"]
    [lead] = result["leads"]
    assert lead["title"] == "Quote: 50 seats" and lead["expected_revenue"] == 12500
    lead_card = addon.caller.get(f"/api/v1/leads/{lead['id']}").json
    assert lead_card["activities"][0]["message_id"] == "<m1@globex.test>"


def test_create_ticket_task_and_note(addon) -> None:
    contact = create_contact(addon.caller)
    addon.gmail.add("m1", mime())
    card = pushed(addon.trigger("message", "m1"))
    form = pushed(addon.call(find_action(card, "Create ticket")))
    body = addon.call(
        find_action(form, "Create ticket"),
        form={"title": strings("Quote"), "priority": strings("high")},
    )
    assert "Ticket created" in str(body)
    task_form = pushed(addon.call(find_action(card, "Create task")))
    addon.call(
        find_action(task_form, "Create task"),
        form={
            "title": strings("Send quote"),
            "due_date": {"dateInput": {"msSinceEpoch": "1795046400000"}},
        },
    )
    note_form = pushed(addon.call(find_action(card, "Add note")))
    addon.call(find_action(note_form, "Add note"), form={"body": strings("Wants a discount")})
    contact_card = addon.caller.get(f"/api/v1/contacts/{contact['id']}").json
    assert [t["subject"] for t in contact_card["tickets"]] == ["Quote"]
    assert contact_card["tickets"][0]["priority"] == "high"
    assert [t["title"] for t in contact_card["tasks"]] == ["Send quote"]
    assert contact_card["tasks"][0]["due_date"] == "2026-11-19"
    assert contact_card["activities"][0]["kind"] == "note"


def test_bad_form_input_is_a_notification(addon) -> None:
    create_company(addon.caller)
    addon.gmail.add("m1", mime())
    card = pushed(addon.trigger("message", "m1"))
    form = pushed(addon.call(find_action(card, "Create lead")))
    body = addon.call(find_action(form, "Create lead"), form={"expected_revenue": strings("lots")})
    assert body["renderActions"]["action"]["notification"]["text"] == (
        "The request is not valid: expected_revenue: Not a valid number."
    )
    assert addon.caller.get("/api/v1/search?q=quote").json["total"] == 0


def _rows(app) -> dict[str, int]:
    import sqlalchemy as sa

    from connector.activities.models import Activity
    from connector.db import session_scope
    from connector.records.models import Company, Contact, Lead, Task, Ticket

    with session_scope(app) as session:
        return {
            model.__name__: session.scalar(sa.select(sa.func.count()).select_from(model))
            for model in (Company, Contact, Lead, Ticket, Task, Activity)
        }


def test_the_forms_refuse_what_the_api_refuses_in_the_apis_words(app, addon) -> None:
    """The add-on's forms load into the API's own input schemas: what POST /api/v1/contacts
    or /api/v1/leads refuses, the form refuses too, with the message of the API's 400, and
    neither writes anything. Each case is a form and the JSON body it stands for."""
    from connector.web.gmail import cards

    create_company(addon.caller)  # Globex: the lead's sender, hank@globex.test, has a company
    addon.gmail.add("m1", mime())
    addon.gmail.add("m2", mime(sender="Mia Wong <mia@initech.test>", message_id="<m2@x.test>"))
    lead_form = pushed(
        addon.call(find_action(pushed(addon.trigger("message", "m1")), "Create lead"))
    )
    unknown = pushed(addon.trigger("message", "m2"))
    assert unknown["name"] == "unknown"
    company = {"name": "Initech", "domains": ["initech.test"]}  # the card proposes it
    long_name, long_title = "M" * 201, "Q" * 301
    # The email the lead comes from: in the form, the open message; in the API, its raw MIME.
    email = {"raw": base64.b64encode(mime()).decode()}
    revenue = "Must be greater than or equal to 0 and less than or equal to 999999999999.99."
    cases = [
        # (button, form, API path, API body, what the message must name)
        (
            find_action(unknown, "Create contact"),
            {"name": long_name, "email": "mia@initech.test", "company_name": "Initech"},
            "/api/v1/contacts",
            {"name": long_name, "emails": ["mia@initech.test"], "new_company": company},
            "name: Longer than maximum length 200.",
        ),
        (
            find_action(unknown, "Create contact"),
            {"name": "Mia Wong", "email": "mia-at-initech", "company_name": "Initech"},
            "/api/v1/contacts",
            {"name": "Mia Wong", "emails": ["mia-at-initech"], "new_company": company},
            "emails.0: 'mia-at-initech' is not an email address.",
        ),
        (  # a required field left empty
            find_action(unknown, "Create contact"),
            {"name": "Mia Wong", "email": "", "company_name": "Initech"},
            "/api/v1/contacts",
            {"name": "Mia Wong", "new_company": company},
            "emails: Missing data for required field.",
        ),
        (
            find_action(unknown, "Create contact"),
            {"name": "Mia Wong", "email": "mia@initech.test", "company_name": long_name},
            "/api/v1/contacts",
            {
                "name": "Mia Wong",
                "emails": ["mia@initech.test"],
                "new_company": {**company, "name": long_name},
            },
            "new_company.name: Length must be between 1 and 200.",
        ),
        (
            find_action(lead_form, "Create lead"),
            {"title": long_title, "expected_revenue": "5000"},
            "/api/v1/leads",
            {"title": long_title, "expected_revenue": "5000", "email": email},
            "title: Length must be between 1 and 300.",
        ),
        (
            find_action(lead_form, "Create lead"),
            {"title": "Quote", "expected_revenue": "-1"},
            "/api/v1/leads",
            {"title": "Quote", "expected_revenue": "-1", "email": email},
            "expected_revenue: " + revenue,
        ),
        (
            find_action(lead_form, "Create lead"),
            {"title": "", "expected_revenue": "1000000000000"},
            "/api/v1/leads",
            {"expected_revenue": "1000000000000", "email": email},
            "expected_revenue: " + revenue,
        ),
        (
            find_action(lead_form, "Create lead"),
            {"title": "Quote", "expected_revenue": "lots"},
            "/api/v1/leads",
            {"title": "Quote", "expected_revenue": "lots", "email": email},
            "expected_revenue: Not a valid number.",
        ),
        (
            find_action(lead_form, "Create lead"),
            {"title": "Quote", "expected_revenue": "NaN"},
            "/api/v1/leads",
            {"title": "Quote", "expected_revenue": "NaN", "email": email},
            "expected_revenue: Special numeric values (nan or infinity) are not permitted.",
        ),
    ]
    before = _rows(app)
    for button, form, path, api_body, names in cases:
        api = addon.caller.post(path, json=api_body)
        assert api.status_code == 400, (path, api_body, api.json)
        assert api.json["message"] == f"The request is not valid: {names}"
        body = addon.call(button, form={name: strings(value) for name, value in form.items()})
        action = body["renderActions"]["action"]
        # As every text of a card, escaped: Gmail shows the API's message as it is.
        assert action["notification"]["text"] == cards.as_text(api.json["message"]), form
        assert "navigations" not in action  # the form stays open, to be corrected
    assert _rows(app) == before
    assert before["Contact"] == before["Lead"] == before["Activity"] == 0


def test_the_other_forms_that_write_use_the_apis_schemas_too(app, addon) -> None:
    """Ticket, task, note and log forms: refused as their API operations refuse them."""
    from connector.web.gmail import cards

    contact = create_contact(addon.caller)
    addon.gmail.add("m1", mime())
    person = pushed(addon.trigger("message", "m1"))
    ticket = find_action(pushed(addon.call(find_action(person, "Create ticket"))), "Create ticket")
    task = find_action(pushed(addon.call(find_action(person, "Create task"))), "Create task")
    note = find_action(pushed(addon.call(find_action(person, "Add note"))), "Add note")
    log = find_action(pushed(addon.call(find_action(person, "Log email"))), "Log email")
    record = {"type": "contact", "id": contact["id"]}
    email = {"raw": base64.b64encode(mime()).decode()}
    cases = [
        # (button, form, API path, API body, what the message must name)
        (
            ticket,
            {"title": "Q" * 301, "priority": "high"},
            "/api/v1/tickets",
            {"subject": "Q" * 301, "priority": "high", "email": email},
            "subject: Length must be between 1 and 300.",
        ),
        (
            ticket,
            {"title": "Quote", "priority": "whenever"},
            "/api/v1/tickets",
            {"subject": "Quote", "priority": "whenever", "email": email},
            "priority: Must be one of: low, normal, high, urgent.",
        ),
        (
            task,
            {"title": ""},
            "/api/v1/tasks",
            {"record": record},
            "title: Missing data for required field.",
        ),
        (
            task,
            {"title": "T" * 301},
            "/api/v1/tasks",
            {"title": "T" * 301, "record": record},
            "title: Length must be between 1 and 300.",
        ),
        (
            note,
            {"body": ""},
            "/api/v1/notes",
            {"records": [record]},
            "body: Missing data for required field.",
        ),
    ]
    before = _rows(app)
    for button, form, path, api_body, names in cases:
        api = addon.caller.post(path, json=api_body)
        assert api.status_code == 400, (path, api_body, api.json)
        assert api.json["message"] == f"The request is not valid: {names}"
        body = addon.call(button, form={name: strings(value) for name, value in form.items()})
        text = body["renderActions"]["action"]["notification"]["text"]
        assert text == cards.as_text(api.json["message"]), form
    # Logging the raw message on no record: the API's message/rfc822 operation refuses it so.
    api = addon.caller.post("/api/v1/emails", data=mime(), content_type="message/rfc822")
    assert api.status_code == 400
    body = addon.call(log, form={"records": {"stringInputs": {"value": []}}})
    text = body["renderActions"]["action"]["notification"]["text"]
    assert text == cards.as_text(api.json["message"])
    assert text == "The request is not valid: record: Missing data for required field."
    assert _rows(app) == before


def test_reply_with_template_creates_a_threaded_draft(addon) -> None:
    create_contact(addon.caller)
    addon.caller.post(
        "/api/v1/templates",
        json={
            "name": "Thanks",
            "subject": "Thanks {{ contact.first_name }}",
            "body_html": "<p>Dear {{ contact.first_name }}, thanks! {{ user.name }}</p>",
        },
    )
    addon.gmail.add("m1", mime())
    card = pushed(addon.trigger("message", "m1"))
    picker = pushed(addon.call(find_action(card, "Reply with template")))
    body = addon.call(find_action(picker, "Thanks"))
    markup = body["renderActions"]["hostAppAction"]["gmailAction"]["openCreatedDraftActionMarkup"]
    [draft] = addon.gmail.drafts
    assert markup == {
        "draftId": draft["id"],
        "draftStorageId": draft["message"]["id"],
        "draftThreadId": "thread-1",
    }
    reply = email.message_from_bytes(draft["raw"], policy=policy.default)
    assert reply["To"] == "Hank Scorpio <hank@globex.test>"
    assert reply["Subject"] == "Re: Quote for 50 seats"
    assert reply["In-Reply-To"] == "<m1@globex.test>"
    assert reply["References"] == "<m1@globex.test>"
    assert "Dear Hank, thanks!" in reply.get_body(("html",)).get_content()


def test_compose_inserts_a_rendered_template(addon) -> None:
    create_contact(addon.caller)
    addon.caller.post(
        "/api/v1/templates",
        json={
            "name": "Hello",
            "subject": "Hi {{ contact.first_name }}",
            "body_html": "<p>Hi {{ contact.first_name }}</p>",
        },
    )
    body = addon.trigger("compose", "draft-1", toRecipients=["hank@globex.test"])
    picker = pushed(body)
    inserted = addon.call(find_action(picker, "Hello"))
    markup = inserted["renderActions"]["hostAppAction"]["gmailAction"]["updateDraftActionMarkup"]
    assert markup["updateBody"]["insertContents"][0]["content"] == "<p>Hi Hank</p>"
    assert markup["updateSubject"]["subject"] == "Hi Hank"


def test_compose_renders_for_whom_the_message_view_would_look_up(addon) -> None:
    """A draft's recipients go through the same rule as an open message's participants:
    the user is not one of them, and addresses are read as addresses."""
    from connector.web.gmail.addon import participants

    create_contact(addon.caller)
    addon.caller.post(
        "/api/v1/templates",
        json={"name": "Hello", "subject": "Hi", "body_html": "<p>Hi {{ contact.first_name }}</p>"},
    )
    recipients = [addon.user_email.upper(), "Hank Scorpio <Hank@Globex.test>"]
    found = participants({"To": ", ".join(recipients)}, addon.user_email)
    assert [person.address for person in found] == ["hank@globex.test"]
    picker = pushed(addon.trigger("compose", "draft-1", toRecipients=recipients))
    inserted = addon.call(find_action(picker, "Hello"))
    markup = inserted["renderActions"]["hostAppAction"]["gmailAction"]["updateDraftActionMarkup"]
    assert markup["updateBody"]["insertContents"][0]["content"] == "<p>Hi Hank</p>"


def test_a_template_past_its_bounds_is_a_notification_within_seconds(addon) -> None:
    """The add-on renders through the same bounded render as the API."""
    create_contact(addon.caller)
    loops = "{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}"
    created = addon.caller.post(
        "/api/v1/templates",
        json={
            "name": "Heavy",
            "subject": "Hi",
            "body_html": f"{{% if contact.first_name == 'Hank' %}}{loops}{{% endif %}}",
        },
    )
    assert created.status_code == 201, created.json
    picker = pushed(addon.trigger("compose", "draft-1", toRecipients=["hank@globex.test"]))
    started = time.monotonic()
    body = addon.call(find_action(picker, "Heavy"))
    assert time.monotonic() - started < 5
    assert (
        "loops run more than 100,000 times"
        in (body["renderActions"]["action"]["notification"]["text"])
    )


def test_gmail_api_failure_is_a_plain_message(addon) -> None:
    create_contact(addon.caller)
    addon.gmail.add("m1", mime())
    card = pushed(addon.trigger("message", "m1"))
    form_card = pushed(addon.call(find_action(card, "Log email")))
    addon.gmail.fail_next = 10
    body = addon.call(find_action(form_card, "Log email"), form={"records": strings("contact:1")})
    assert "Gmail could not be reached" in body["renderActions"]["action"]["notification"]["text"]
    failed_trigger = pushed(addon.trigger("message", "m1"))
    assert "Gmail could not be reached" in str(failed_trigger)


def test_every_action_is_behind_the_token(addon) -> None:
    from connector.web.gmail.addon import ACTIONS

    for name in [*ACTIONS, "nonexistent"]:
        response = addon.post(f"/gmail/actions/{name}", addon.event(), token=None)
        assert response.status_code == 401
    raw = base64.b64encode(b"x").decode()
    assert raw


def test_universal_actions(addon) -> None:
    create_contact(addon.caller)
    search = addon.post("/gmail/actions/universal_search", addon.event())
    assert search.status_code == 200, search.json
    card = pushed(search.json)
    found = pushed(
        addon.call(find_action(card, "Search"), message_id=None, form={"query": strings("hank")})
    )
    assert "Hank Scorpio" in str(found)
    settings = pushed(addon.post("/gmail/actions/universal_settings", addon.event()).json)
    assert "Acme" in str(settings) and addon.user_email in str(settings)


def test_open_in_the_connector_links_to_a_signed_record_page(addon, make_caller) -> None:
    contact = create_contact(addon.caller, "Hank <b>Scorpio</b>", ["hank@globex.test"])
    addon.gmail.add("m1", mime())
    card = pushed(addon.trigger("message", "m1"))
    link = next(
        b["onClick"]["openLink"]["url"]
        for s in card["sections"]
        for w in s["widgets"]
        for b in w.get("buttonList", {}).get("buttons", [])
        if b["text"] == "Open in the connector"
    )
    assert link.startswith(f"{PUBLIC_URL}/records/contact/{contact['id']}?t=")
    page = addon.client.get(link.removeprefix(PUBLIC_URL))
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Hank &lt;b&gt;Scorpio&lt;/b&gt;" in html and "<b>Scorpio" not in html
    tampered = link.removeprefix(PUBLIC_URL).replace(f"contact/{contact['id']}", "contact/999")
    assert addon.client.get(tampered).status_code == 403
    assert addon.client.get(f"/records/contact/{contact['id']}").status_code == 403


def test_manifest_parses_with_googles_protos(runner, tmp_path) -> None:
    import json

    from google.cloud.gsuiteaddons_v1.types import AddOns

    output = tmp_path / "deployment.json"
    result = runner.invoke(
        args=["manifest", "gmail", "--base-url", PUBLIC_URL, "--output", str(output)]
    )
    assert result.exit_code == 0, result.output
    deployment = json.loads(output.read_text())
    assert deployment["oauthScopes"] == [
        "https://www.googleapis.com/auth/userinfo.email",
        "https://www.googleapis.com/auth/gmail.addons.execute",
        "https://www.googleapis.com/auth/gmail.addons.current.message.readonly",
        "https://www.googleapis.com/auth/gmail.addons.current.action.compose",
    ]
    add_ons = deployment["addOns"]
    # Granular consent postdates the published protos' HttpOptions: checked here, then
    # everything else must parse with no unknown field.
    assert add_ons["httpOptions"].pop("granularOauthPermissionSupport") == "OPT_IN"
    parsed = AddOns.pb(AddOns())
    json_format.ParseDict(add_ons, parsed)
    assert parsed.gmail.contextual_triggers[0].on_trigger_function == f"{PUBLIC_URL}/gmail/message"
    assert parsed.gmail.contextual_triggers[0].HasField("unconditional")
    assert parsed.gmail.compose_trigger.draft_access == 2  # METADATA
    assert parsed.common.homepage_trigger.run_function == f"{PUBLIC_URL}/gmail/homepage"
    assert [a.label for a in parsed.common.universal_actions] == ["Search", "Settings"]
    assert parsed.common.open_link_url_prefixes == [f"{PUBLIC_URL}/"]
    for url in [parsed.common.logo_url, *[a.run_function for a in parsed.common.universal_actions]]:
        assert url.startswith(PUBLIC_URL + "/")


def test_database_failure_is_a_plain_message(addon, monkeypatch) -> None:
    from sqlalchemy.exc import OperationalError

    from connector.web.gmail import addon as addon_module

    def broken(*_args, **_kwargs):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    addon.gmail.add("m1", mime())
    monkeypatch.setattr(addon_module.lookup, "lookup", broken)
    card = pushed(addon.trigger("message", "m1"))
    assert "records are unavailable" in str(card)
    assert "connection refused" not in str(card)


def test_an_unreachable_database_is_an_error_card_not_an_http_error(app, addon, tmp_path) -> None:
    """From the first query (finding the user): Google shows only its own generic error for
    anything but a card, so an outage is a card that says what happened."""
    from sqlalchemy.orm import sessionmaker

    from connector.db import make_engine

    addon.gmail.add("m1", mime())
    gone = make_engine(f"sqlite:///{tmp_path / 'gone' / 'connector.sqlite3'}")
    app.extensions["connector.sessionmaker"] = sessionmaker(gone)
    card = pushed(addon.trigger("message", "m1"))
    assert "unavailable right now; nothing was saved. Try again" in str(card)
    response = addon.post("/gmail/actions/universal_search", addon.event())
    assert response.status_code == 200
    assert (
        "unavailable right now" in response.json["renderActions"]["action"]["notification"]["text"]
    )


@pytest.fixture
def consented(app, addon):
    """The user signed in with Google and allowed sending: a stored, encrypted refresh token."""
    from connector.accounts import service as accounts
    from connector.accounts.models import Provider
    from connector.db import session_scope
    from connector.orgs.models import User
    from tests.fakes.google import FakeGoogleIdP

    idp = FakeGoogleIdP(addon.google)
    with serve(idp.app()) as idp_url:
        app.config.update(
            GOOGLE_OAUTH_CLIENT_ID=idp.client_id,
            GOOGLE_OAUTH_CLIENT_SECRET=idp.client_secret,
            GOOGLE_TOKEN_URL=idp_url + "/token",
        )

        def link(scopes: list[str]) -> None:
            with session_scope(app) as session:
                user = session.get(User, addon.caller.user_id)
                accounts.link_account(
                    session,
                    app.extensions["connector.token_cipher"],
                    user,
                    Provider.GOOGLE,
                    "sub-1",
                    user.email,
                    scopes,
                    "1//stored-refresh",
                )

        yield idp, link


def _template_picker(addon) -> dict:
    create_contact(addon.caller)
    addon.caller.post(
        "/api/v1/templates",
        json={
            "name": "Thanks",
            "subject": "Thanks",
            "body_html": "<p>Dear {{ contact.first_name }}</p>",
        },
    )
    addon.gmail.add("m1", mime())
    card = pushed(addon.trigger("message", "m1"))
    return pushed(addon.call(find_action(card, "Reply with template")))


def send(addon, picker: dict) -> dict:
    """The picker's Send, then the preview's: only the second one sends."""
    preview = pushed(addon.call(find_action(picker, "Thanks/Send")))
    assert preview["name"] == "reply-preview" and addon.gmail.sent == []
    return addon.call(find_action(preview, "Send"))


def test_send_now_refreshes_the_token_sends_in_thread_and_logs(addon, consented) -> None:
    idp, link = consented
    link(["openid", "https://www.googleapis.com/auth/gmail.send"])
    picker = _template_picker(addon)
    body = send(addon, picker)
    assert body["renderActions"]["action"]["notification"]["text"] == "Reply sent and logged."
    [sent] = addon.gmail.sent
    assert sent["threadId"] == "thread-1"
    assert sent["authorization"] == "Bearer ya29.refreshed"
    reply = email.message_from_bytes(sent["raw"], policy=policy.default)
    assert reply["In-Reply-To"] == "<m1@globex.test>" and reply["References"] == "<m1@globex.test>"
    assert reply["Subject"] == "Re: Quote for 50 seats"
    [refresh] = [r for r in idp.token_requests if r.get("grant_type") == "refresh_token"]
    assert refresh["refresh_token"] == "1//stored-refresh"
    [result] = addon.caller.get("/api/v1/lookup?email=hank@globex.test").json["results"]
    assert result["activities"][0]["message_id"] == reply["Message-ID"]


def test_send_now_goes_through_the_one_replies_service(addon, consented, monkeypatch) -> None:
    """Gmail's Send and Outlook's send share connector.replies.service.send_reply: here it
    gets the user's Gmail as its mailbox (test_outlook_send checks Outlook's side)."""
    from connector.providers.google.sending import GmailMailbox
    from connector.records.models import RecordType
    from connector.replies import service

    idp, link = consented
    link(["openid", "https://www.googleapis.com/auth/gmail.send"])
    calls = []
    send_reply = service.send_reply

    def spy(ctx, mailbox, **kwargs):
        calls.append((mailbox, kwargs))
        return send_reply(ctx, mailbox, **kwargs)

    monkeypatch.setattr(service, "send_reply", spy)
    picker = _template_picker(addon)
    body = send(addon, picker)
    assert body["renderActions"]["action"]["notification"]["text"] == "Reply sent and logged."
    [(mailbox, kwargs)] = calls
    assert isinstance(mailbox, GmailMailbox)
    assert kwargs["message_id"] == "m1" and kwargs["record"].type == RecordType.CONTACT
    assert len(addon.gmail.sent) == 1


@pytest.mark.parametrize("situation", ["never signed in", "no send scope", "revoked"])
def test_send_without_consent_offers_to_sign_in(addon, consented, situation) -> None:
    idp, link = consented
    if situation == "no send scope":
        link(["openid"])
    if situation == "revoked":
        link(["https://www.googleapis.com/auth/gmail.send"])
        idp.mode = "revoked"
    picker = _template_picker(addon)
    card = pushed(send(addon, picker))
    assert card["header"]["title"] == "Allow sending"
    [button] = card["sections"][0]["widgets"][1]["buttonList"]["buttons"]
    assert button["onClick"]["openLink"]["url"] == f"{PUBLIC_URL}/connect?scope=gmail.send"
    assert addon.gmail.sent == []


def test_send_with_an_unanswered_send_is_unconfirmed_and_not_retried(addon, consented) -> None:
    idp, link = consented
    link(["openid", "https://www.googleapis.com/auth/gmail.send"])
    addon.gmail.send_fails_after_sending = True
    picker = _template_picker(addon)
    body = send(addon, picker)
    notice = body["renderActions"]["action"]["notification"]["text"]
    assert notice.startswith("Gmail did not confirm that the reply went out. Look in Sent")
    # Sent once, never again by a retry; and not logged as if it surely went.
    assert len(addon.gmail.sent) == 1
    [result] = addon.caller.get("/api/v1/lookup?email=hank@globex.test").json["results"]
    assert result["activities"] == []


def test_a_reply_sent_when_the_records_go_away_says_not_to_send_it_again(
    addon, consented, monkeypatch
) -> None:
    from sqlalchemy.exc import OperationalError

    from connector.web.gmail import addon as addon_module

    idp, link = consented
    link(["openid", "https://www.googleapis.com/auth/gmail.send"])
    picker = _template_picker(addon)

    def gone(*_args, **_kwargs):
        raise OperationalError("INSERT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(addon_module.activities, "log_email", gone)
    body = send(addon, picker)
    notice = body["renderActions"]["action"]["notification"]["text"]
    assert notice.startswith("Your reply was sent, but it could not be logged")
    assert "Do not send it again" in notice
    assert len(addon.gmail.sent) == 1


def test_send_when_google_refuses_the_client_is_not_a_sign_in(addon, consented) -> None:
    idp, link = consented
    link(["openid", "https://www.googleapis.com/auth/gmail.send"])
    idp.mode = "client_error"
    picker = _template_picker(addon)
    body = send(addon, picker)
    assert "pushCard" not in body["renderActions"]["action"].get("navigations", [{}])[0]
    assert body["renderActions"]["action"]["notification"]["text"].startswith("Gmail could not")
    assert addon.gmail.sent == []


# Stored XSS: record data in every card --------------------------------------------------

XSS = '<img src=x onerror=alert(1)>"&'
# Our own markup in formatted text; nothing else may open a tag there.
OWN_TAGS = ("<b>", "</b>", "<br>", '<font color="#d93025">', "</font>")
# Where Google renders formatted text (a small HTML subset): card.proto and the guides.
FORMATTED = {"textParagraph": ("text",), "decoratedText": ("text", "topLabel", "bottomLabel")}
# Widgets whose text Google documents as plain: record data is escaped there all the same.
LABELS = {
    "buttonList": lambda w: [b.get("text", "") for b in w["buttons"]],
    "selectionInput": lambda w: [w["label"]] + [i["text"] for i in w["items"]],
    "textInput": lambda w: [w["label"]],
    "dateTimePicker": lambda w: [w["label"]],
}


def card_texts(card: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Every text a card shows, as (shown, input values). A widget of a kind not classified
    here fails the test: it must be placed first."""
    shown = [card["header"]["title"], card["header"].get("subtitle", "")]
    values = []
    for section in card["sections"]:
        shown.append(section.get("header", ""))
        for widget in section["widgets"]:
            [(kind, body)] = widget.items()
            if kind in FORMATTED:
                shown += [body.get(field, "") for field in FORMATTED[kind]]
                shown += [body.get("button", {}).get("text", "")]
            else:
                assert kind in LABELS, f"unclassified widget {kind}"
                shown += LABELS[kind](body)
                if kind == "textInput":
                    values.append(body.get("value", ""))
    return shown, values


def assert_escaped(cards: list[dict[str, Any]]) -> None:
    """No tag from record data in any text a card shows; input values as written."""
    for card in cards:
        shown, values = card_texts(card)
        for value in shown:
            for tag in OWN_TAGS:
                value = value.replace(tag, "")
            assert "<" not in value and ">" not in value, value
        assert all("&lt;" not in value and "&amp;" not in value for value in values), values


def test_record_data_is_escaped_in_every_card(app, addon) -> None:
    from markupsafe import escape

    from connector.db import session_scope
    from connector.orgs.models import User

    with session_scope(app) as session:  # what the settings card shows
        user = session.get(User, addon.caller.user_id)
        user.name, user.organization.name = f"Ann {XSS}", f"Acme {XSS}"
    company = create_company(addon.caller, f"Globex {XSS}")
    contact = create_contact(
        addon.caller, f"Hank {XSS}", ["hank@globex.test"], job_title=XSS, phone="+1 555 0100"
    )
    lead = create_lead(addon.caller, contact_id=contact["id"], title=f"Deal {XSS}")
    ticket = addon.caller.post(
        "/api/v1/tickets", json={"subject": f"Broken {XSS}", "contact_id": contact["id"]}
    )
    assert ticket.status_code == 201, ticket.json
    task = {"title": f"Call {XSS}", "due_date": "2020-01-01"}
    task["record"] = {"type": "contact", "id": contact["id"]}
    assert addon.caller.post("/api/v1/tasks", json=task).status_code == 201
    note = {"body": f"Note {XSS}", "records": [{"type": "contact", "id": contact["id"]}]}
    assert addon.caller.post("/api/v1/notes", json=note).status_code == 201
    template = {"name": f"Thanks {XSS}", "subject": f"Re {XSS}", "body_html": "<p>Hi</p>"}
    assert addon.caller.post("/api/v1/templates", json=template).status_code == 201
    addon.gmail.add("m1", mime())
    addon.gmail.add("m2", mime(to="ann@acme.test, mia@globex.test", message_id="<m2@globex.test>"))
    addon.gmail.add("m3", mime(sender="Mia <mia@globex.test>", message_id="<m3@globex.test>"))

    seen = [pushed(addon.trigger("homepage")), pushed(addon.trigger("message", "m2"))]
    person = pushed(addon.trigger("message", "m1"))
    seen += [person, pushed(addon.trigger("message", "m3"))]  # an unknown sender of Globex
    for label in ("Log email", "Create lead", "Create ticket", "Reply with template"):
        seen.append(pushed(addon.call(find_action(person, label))))
    seen.append(pushed(addon.trigger("compose", "draft-1", toRecipients=["hank@globex.test"])))
    search = pushed(addon.post("/gmail/actions/universal_search", addon.event()).json)
    for query in ("Hank", "Globex", "Deal", "Broken", XSS):
        form = {"query": strings(query)}
        seen.append(pushed(addon.call(find_action(search, "Search"), message_id=None, form=form)))
    seen.append(pushed(addon.post("/gmail/actions/universal_settings", addon.event()).json))

    assert_escaped(seen)
    shown = [text for card in seen for texts in card_texts(card) for text in texts]
    stored = [company["name"], lead["title"], f"Broken {XSS}", f"Call {XSS}", f"Note {XSS}"]
    stored += [template["name"], template["subject"], "Ann " + XSS, "Acme " + XSS, XSS]
    for value in stored:  # each is shown, escaped or as written
        assert any(str(escape(value)) in text or value in text for text in shown), value
    assert person["header"]["title"] == f"Hank {escape(XSS)}"
    log_form = seen[4]
    items = log_form["sections"][0]["widgets"][0]["selectionInput"]["items"]
    assert f"Contact: Hank {escape(XSS)}" in [i["text"] for i in items]


def test_card_text_helpers() -> None:
    from markupsafe import Markup

    from connector.web.gmail import cards

    assert cards.formatted("Smith & <Co>") == "Smith &amp; &lt;Co&gt;"
    assert cards.formatted(Markup("<b>{}</b>").format("<i>")) == "<b>&lt;i&gt;</b>"
    assert cards.as_text("Smith & <Co>") == "Smith &amp; &lt;Co&gt;"
    assert cards.as_text(Markup("<b>{}</b> ok").format("A & B")) == "A &amp; B ok"
    assert cards.input_value("Smith & <Co>") == "Smith & <Co>"
