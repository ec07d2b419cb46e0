"""Issue 15 in Gmail: what a new user stumbled on, each through the add-on's HTTP endpoints
as Google calls them (every answered card parsed by Google's Card proto, test_gmail's
Addon.post); the expired "Open in the connector" link in a real Chromium."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from tests import test_gmail
from tests.fakes.servers import serve
from tests.helpers import create_company, create_contact, create_lead
from tests.test_gmail import Addon, find_action, mime, pushed, strings

# The add-on played as Google plays it, with test_gmail's fixtures.
google = test_gmail.google
gmail = test_gmail.gmail
addon = test_gmail.addon
consented = test_gmail.consented

SEND_SCOPES = ["openid", "https://www.googleapis.com/auth/gmail.send"]


def answer(body: dict[str, Any]) -> dict[str, Any]:
    return body["renderActions"]["action"]


def notification(body: dict[str, Any]) -> str:
    return str(answer(body)["notification"]["text"])


def updated(body: dict[str, Any]) -> dict[str, Any]:
    """The card an answer shows in place of the one the button was on."""
    [card] = [n["updateCard"] for n in answer(body)["navigations"] if "updateCard" in n]
    return card


def widgets(card: dict[str, Any]) -> list[dict[str, Any]]:
    return [w for s in card["sections"] for w in s["widgets"]]


def section(card: dict[str, Any], header: str) -> list[dict[str, Any]]:
    found = [s["widgets"] for s in card["sections"] if s.get("header") == header]
    return found[0] if found else []


def decorated(card: dict[str, Any], text: str) -> dict[str, Any]:
    [found] = [
        w["decoratedText"] for w in widgets(card) if w.get("decoratedText", {}).get("text") == text
    ]
    return found


def inputs(card: dict[str, Any]) -> dict[str, str]:
    """The card's text inputs, by name, as prefilled."""
    return {
        w["textInput"]["name"]: w["textInput"].get("value", "")
        for w in widgets(card)
        if "textInput" in w
    }


def labels(card: dict[str, Any]) -> list[str]:
    """Every button's label on the card."""
    found = [b["text"] for w in widgets(card) for b in w.get("buttonList", {}).get("buttons", [])]
    found += [
        w["decoratedText"]["button"]["text"]
        for w in widgets(card)
        if "button" in w.get("decoratedText", {})
    ]
    return found


def lookup_one(addon: Addon, address: str) -> dict[str, Any]:
    response = addon.caller.get(f"/api/v1/lookup?email={address}")
    assert response.status_code == 200, response.json
    [result] = response.json["results"]
    return dict(result)


# 1. A new person at a known company ---------------------------------------------------


def test_a_new_person_at_a_known_company_can_be_made_a_contact_from_its_card(addon) -> None:
    globex = create_company(addon.caller)
    addon.gmail.add("m1", mime(sender="Mia Wong <mia@globex.test>"))
    card = pushed(addon.trigger("message", "m1"))
    assert card["name"] == "person" and card["header"]["title"] == "Globex"
    # Prefilled from lookup's proposal: the display name, the address; the company's card.
    assert inputs(card) == {"name": "Mia Wong", "email": "mia@globex.test"}
    assert "Create contact" in labels(card)

    # After something done on the company's card, shown again: still offered, same name.
    task_form = pushed(addon.call(find_action(card, "Create task")))
    again = updated(
        addon.call(find_action(task_form, "Create task"), form={"title": strings("Call Mia")})
    )
    assert again["header"]["title"] == "Globex"
    assert inputs(again) == {"name": "Mia Wong", "email": "mia@globex.test"}

    body = addon.call(
        find_action(again, "Create contact"),
        form={"name": strings("Mia Wong"), "email": strings("mia@globex.test")},
    )
    assert notification(body) == "Contact created: Mia Wong"
    contact_card = updated(body)
    assert contact_card["name"] == "person"
    assert contact_card["header"]["title"] == "Mia Wong"
    assert contact_card["header"]["subtitle"] == "Globex"
    assert "Create contact" not in labels(contact_card)
    result = lookup_one(addon, "mia@globex.test")
    assert result["contact"]["name"] == "Mia Wong"
    assert result["company"]["id"] == globex["id"]


def test_everyone_is_looked_up_at_once_with_the_names_the_message_gives(addon, monkeypatch) -> None:
    from connector.web.gmail import addon as addon_module

    calls: list[list[str]] = []
    real = addon_module.lookup.lookup

    def spy(ctx, values):
        calls.append(list(values))
        return real(ctx, values)

    monkeypatch.setattr(addon_module.lookup, "lookup", spy)
    create_company(addon.caller)
    addon.gmail.add(
        "m1",
        mime(
            sender="Bob Smith <bobsmith1987@initech.test>",
            to=f'Ann <{addon.user_email}>, "Wong, Mia" <mia@globex.test>',
        ),
    )
    picker = pushed(addon.trigger("message", "m1"))
    assert picker["name"] == "picker"
    assert calls == [['"Bob Smith" <bobsmith1987@initech.test>', '"Wong, Mia" <mia@globex.test>']]

    # Opened from the picker, each keeps the name the message gave them.
    bob = pushed(addon.call(find_action(picker, "bobsmith1987@initech.test")))
    assert bob["name"] == "unknown" and inputs(bob)["name"] == "Bob Smith"
    mia = pushed(addon.call(find_action(picker, "mia@globex.test")))
    assert mia["header"]["title"] == "Globex" and inputs(mia)["name"] == "Wong, Mia"


# 2. The unknown sender's display name --------------------------------------------------


@pytest.mark.parametrize(
    ("sender", "proposed"),
    [
        ("Bob Smith <bobsmith1987@initech.test>", "Bob Smith"),
        ('"Smith, Bob" <bobsmith1987@initech.test>', "Smith, Bob"),
        ("=?utf-8?q?Zo=C3=AB_M=C3=BCller?= <bobsmith1987@initech.test>", "Zoë Müller"),
        ("bobsmith1987@initech.test", "Bobsmith"),  # no name given: a guess, no digits
    ],
)
def test_the_unknown_sender_is_proposed_by_the_name_they_give(addon, sender, proposed) -> None:
    addon.gmail.add("m1", mime(sender=sender))
    card = pushed(addon.trigger("message", "m1"))
    assert card["name"] == "unknown"
    assert inputs(card)["name"] == proposed
    body = addon.call(
        find_action(card, "Create contact"),
        form={
            "name": strings(inputs(card)["name"]),
            "email": strings("bobsmith1987@initech.test"),
            "company_name": strings("Initech"),
        },
    )
    assert updated(body)["header"]["title"] == proposed
    assert lookup_one(addon, "bobsmith1987@initech.test")["contact"]["name"] == proposed


# 3. The homepage ----------------------------------------------------------------------


def test_homepage_leads_open_their_card(addon) -> None:
    contact = create_contact(addon.caller)
    lead = create_lead(addon.caller, contact_id=contact["id"], title="Renewal")
    home = pushed(addon.trigger("homepage"))
    lead_card = pushed(addon.call(find_action(home, "Renewal"), message_id=None))
    assert lead_card["name"] == "lead" and lead_card["header"]["title"] == "Renewal"
    assert "Save stage" in labels(lead_card)
    assert f"/records/lead/{lead['id']}?t=" in str(lead_card)


def test_homepage_marks_overdue_tasks_and_completes_by_done_with_undo(addon) -> None:
    today = dt.date.today()
    late = today - dt.timedelta(days=3)
    for title, due in (("Call Hank", late), ("Send quote", today + dt.timedelta(days=2))):
        created = addon.caller.post(
            "/api/v1/tasks", json={"title": title, "due_date": due.isoformat()}
        )
        assert created.status_code == 201, created.json
    home = pushed(addon.trigger("homepage"))
    call, quote = decorated(home, "Call Hank"), decorated(home, "Send quote")
    assert call["bottomLabel"] == f'<font color="#d93025">Overdue · due {late.day} {late:%b}</font>'
    assert "Overdue" not in quote["bottomLabel"] and "font" not in quote["bottomLabel"]
    # The title reads; only Done completes.
    assert "onClick" not in call and call["button"]["text"] == "Done"

    body = addon.call(find_action(home, "Call Hank/Done"), message_id=None)
    assert notification(body) == "Done: Call Hank"
    after = updated(body)
    assert after["name"] == "homepage"
    assert [t["title"] for t in addon.caller.get("/api/v1/tasks").json] == ["Send quote"]
    assert "Call Hank" not in str(section(after, "Your tasks due soon"))

    body = addon.call(find_action(after, "Done: Call Hank/Undo"), message_id=None)
    assert notification(body) == "Not done: Call Hank"
    back = updated(body)
    assert back["name"] == "homepage"
    assert decorated(back, "Call Hank")["button"]["text"] == "Done"
    titles = sorted(t["title"] for t in addon.caller.get("/api/v1/tasks").json)
    assert titles == ["Call Hank", "Send quote"]


# 4 and 5. Templates: subjects filled in, a preview before Send ----------------------------


def _templates(addon: Addon) -> None:
    create_company(addon.caller)
    create_contact(addon.caller, "Hank Scorpio", ["hank@globex.test"])
    for name, subject, body in (
        (
            "Thanks",
            "Thanks, {{ contact.first_name }}",
            "<p>Dear {{ contact.first_name }},</p><p>thanks from {{ user.name }}.</p>",
        ),
        ("Quote", "Quote for {{ company.name }}", "<p>Here it is.</p>"),
    ):
        created = addon.caller.post(
            "/api/v1/templates", json={"name": name, "subject": subject, "body_html": body}
        )
        assert created.status_code == 201, created.json
    addon.gmail.add("m1", mime())


def test_pickers_show_subjects_as_they_read_for_the_record_computed_only_there(
    addon, monkeypatch
) -> None:
    from connector.web.gmail import addon as addon_module

    _templates(addon)
    calls = []
    real = addon_module.templates.subject_previews

    def spy(ctx, found, ref):
        calls.append(ref)
        return real(ctx, found, ref)

    monkeypatch.setattr(addon_module.templates, "subject_previews", spy)
    card = pushed(addon.trigger("message", "m1"))
    assert calls == []  # the person card renders no template
    picker = pushed(addon.call(find_action(card, "Reply with template")))
    assert len(calls) == 1 and calls[0].type.value == "contact"
    assert decorated(picker, "Thanks")["bottomLabel"] == "Thanks, Hank · click for a draft"
    assert decorated(picker, "Quote")["bottomLabel"] == "Quote for Globex · click for a draft"
    assert "{{" not in str(picker)

    compose = pushed(addon.trigger("compose", "draft-1", toRecipients=["hank@globex.test"]))
    assert decorated(compose, "Thanks")["bottomLabel"] == "Thanks, Hank"
    assert "{{" not in str(compose)


def test_send_shows_the_rendered_reply_first_and_only_its_send_sends(addon, consented) -> None:
    _idp, link = consented
    link(SEND_SCOPES)
    _templates(addon)
    card = pushed(addon.trigger("message", "m1"))
    picker = pushed(addon.call(find_action(card, "Reply with template")))

    preview = pushed(addon.call(find_action(picker, "Thanks/Send")))
    assert preview["name"] == "reply-preview"
    assert addon.gmail.sent == []
    assert decorated(preview, "Hank Scorpio &lt;hank@globex.test&gt;")["topLabel"] == "To"
    assert decorated(preview, "Re: Quote for 50 seats")["topLabel"] == "Subject"
    [message] = section(preview, "Message")
    shown = message["textParagraph"]["text"]
    assert "Dear Hank," in shown and "thanks from ann." in shown and "{{" not in shown
    assert labels(preview) == ["Send", "Cancel"]

    # Cancel: back to the picker, nothing sent.
    assert answer(addon.call(find_action(preview, "Cancel"))) == {
        "navigations": [{"popCard": True}]
    }
    assert addon.gmail.sent == [] and addon.gmail.drafts == []

    body = addon.call(find_action(preview, "Send"))
    assert notification(body) == "Reply sent and logged."
    # Back past the preview and the picker, to the card they were opened from.
    assert answer(body)["navigations"] == [{"popCard": True}, {"popCard": True}]
    [sent] = addon.gmail.sent
    assert "Dear Hank," in sent["raw"].decode()
    assert lookup_one(addon, "hank@globex.test")["activities"][0]["subject"] == (
        "Re: Quote for 50 seats"
    )


def test_the_preview_shows_record_data_as_text(addon) -> None:
    from markupsafe import escape

    from tests.test_gmail import XSS, assert_escaped

    create_contact(addon.caller, f"Hank {XSS}", ["hank@globex.test"])
    template = {
        "name": "Hello",
        "subject": "Hi {{ contact.name }}",
        "body_html": "<p>Hi {{ contact.name }}</p><p>Line two</p>",
    }
    assert addon.caller.post("/api/v1/templates", json=template).status_code == 201
    addon.gmail.add("m1", mime())
    card = pushed(addon.trigger("message", "m1"))
    picker = pushed(addon.call(find_action(card, "Reply with template")))
    preview = pushed(addon.call(find_action(picker, "Hello/Send")))
    assert_escaped([picker, preview])
    [message] = section(preview, "Message")
    assert message["textParagraph"]["text"] == f"Hi Hank {escape(XSS)}<br><br>Line two"
    assert decorated(picker, "Hello")["bottomLabel"].startswith(f"Hi Hank {escape(XSS)}")


# 6. A new task or note shows on the card -----------------------------------------------


def test_a_new_task_and_note_show_on_the_card_they_were_added_from(addon) -> None:
    contact = create_contact(addon.caller)
    addon.gmail.add("m1", mime())
    card = pushed(addon.trigger("message", "m1"))
    task_form = pushed(addon.call(find_action(card, "Create task")))
    body = addon.call(
        find_action(task_form, "Create task"),
        form={"title": strings("Send quote")},
    )
    assert notification(body) == "Task created: Send quote"
    assert answer(body)["navigations"][0] == {"popCard": True}
    shown = updated(body)
    assert shown["name"] == "person" and shown["header"]["title"] == "Hank Scorpio"
    assert "Send quote" in str(section(shown, "Open tasks"))
    assert "Task created: Send quote" in str(shown["sections"][0])

    note_form = pushed(addon.call(find_action(shown, "Add note")))
    body = addon.call(
        find_action(note_form, "Add note"), form={"body": strings("Wants a discount")}
    )
    assert notification(body) == "Note added."
    shown = updated(body)
    assert shown["header"]["title"] == "Hank Scorpio"
    assert "Wants a discount" in str(section(shown, "Recent activity"))

    # From a lead's own card: the lead's card, with the task on it.
    create_lead(addon.caller, contact_id=contact["id"], title="Renewal")
    lead_card = pushed(addon.call(find_action(pushed(addon.trigger("message", "m1")), "Renewal")))
    task_form = pushed(addon.call(find_action(lead_card, "Create task")))
    body = addon.call(find_action(task_form, "Create task"), form={"title": strings("Chase PO")})
    shown = updated(body)
    assert shown["name"] == "lead" and "Chase PO" in str(section(shown, "Open tasks"))


# 7. Search ----------------------------------------------------------------------------


def _search(addon: Addon, query: str) -> dict[str, Any]:
    search = pushed(addon.post("/gmail/actions/universal_search", addon.event()).json)
    form = {"query": strings(query)}
    return pushed(addon.call(find_action(search, "Search"), message_id=None, form=form))


def test_search_results_say_who_is_who_and_open_the_person_card(addon) -> None:
    create_company(addon.caller)
    create_contact(
        addon.caller, "Hank Scorpio", ["hank@globex.test", "h@globex.test"], job_title="CEO"
    )
    results = _search(addon, "hank")
    assert decorated(results, "Hank Scorpio")["bottomLabel"] == "CEO at Globex · hank@globex.test"
    person = pushed(addon.call(find_action(results, "Hank Scorpio"), message_id=None))
    assert person["name"] == "person" and person["header"]["subtitle"] == "CEO · Globex"
    assert decorated(person, "hank@globex.test")["topLabel"] == "Email"


def test_an_empty_search_for_an_address_offers_create_contact_with_it(addon) -> None:
    create_company(addon.caller)
    results = _search(addon, "Nina.Park@Globex.test")
    assert "Nothing matches" in str(results)
    form = pushed(addon.call(find_action(results, "Create contact"), message_id=None))
    assert form["name"] == "contact-create"
    # As lookup proposes it for the address: a name from it, and its known company.
    assert inputs(form) == {"name": "Nina Park", "email": "nina.park@globex.test"}
    assert decorated(form, "Globex")["topLabel"] == "Company"
    assert labels(form) == ["Create contact", "Cancel"]
    body = addon.call(
        find_action(form, "Create contact"),
        message_id=None,
        form={"name": strings("Nina Park"), "email": strings("nina.park@globex.test")},
    )
    assert notification(body) == "Contact created: Nina Park"
    assert updated(body)["header"]["title"] == "Nina Park"
    assert lookup_one(addon, "nina.park@globex.test")["company"]["name"] == "Globex"


def test_an_empty_search_for_a_name_offers_create_contact_with_it(addon) -> None:
    results = _search(addon, "  Zed   Alpha ")
    form = pushed(addon.call(find_action(results, "Create contact"), message_id=None))
    assert inputs(form) == {"name": "Zed Alpha", "email": ""}
    body = addon.call(
        find_action(form, "Create contact"),
        message_id=None,
        form={"name": strings("Zed Alpha"), "email": strings("zed@alpha.test")},
    )
    assert notification(body) == "Contact created: Zed Alpha"
    assert lookup_one(addon, "zed@alpha.test")["contact"]["name"] == "Zed Alpha"


# 8. Every form has a Cancel that writes nothing ----------------------------------------


def test_every_form_cancels_back_without_writing(app, addon) -> None:
    from tests.test_gmail import _rows

    contact = create_contact(addon.caller)
    lead = create_lead(addon.caller, contact_id=contact["id"], title="Renewal")
    addon.caller.post(
        "/api/v1/templates", json={"name": "Thanks", "subject": "Hi", "body_html": "<p>Hi</p>"}
    )
    addon.gmail.add("m1", mime())
    card = pushed(addon.trigger("message", "m1"))
    lead_card = pushed(addon.call(find_action(card, "Renewal")))
    picker = pushed(addon.call(find_action(card, "Reply with template")))
    empty_search = _search(addon, "nobody@initech.test")
    forms = {
        "log": (
            pushed(addon.call(find_action(card, "Log email"))),
            {"records": strings(f"contact:{contact['id']}")},
        ),
        "lead-form": (
            pushed(addon.call(find_action(card, "Create lead"))),
            {"title": strings("Deal")},
        ),
        "ticket-form": (
            pushed(addon.call(find_action(card, "Create ticket"))),
            {"title": strings("Broken")},
        ),
        "task-form": (
            pushed(addon.call(find_action(card, "Create task"))),
            {"title": strings("Call")},
        ),
        "note-form": (pushed(addon.call(find_action(card, "Add note"))), {"body": strings("Note")}),
        "contact-form": (
            pushed(addon.call(find_action(card, "Edit contact"))),
            {"name": strings("Someone else")},
        ),
        "lead": (lead_card, {"stage": strings("lost"), "lost_reason": strings("Price")}),
        "contact-create": (
            pushed(addon.call(find_action(empty_search, "Create contact"), message_id=None)),
            {"name": strings("Nobody"), "email": strings("nobody@initech.test")},
        ),
        "templates": (picker, {}),
        "reply-preview": (pushed(addon.call(find_action(picker, "Thanks/Send"))), {}),
    }
    before = _rows(app)
    for name, (form_card, typed) in forms.items():
        assert form_card["name"] == name
        body = addon.call(find_action(form_card, "Cancel"), form=typed)
        assert answer(body) == {"navigations": [{"popCard": True}]}, name
    assert _rows(app) == before
    assert addon.gmail.sent == [] and addon.gmail.drafts == []
    stored = addon.caller.get(f"/api/v1/contacts/{contact['id']}").json["contact"]
    assert stored["name"] == "Hank Scorpio" and stored["version"] == contact["version"]
    assert addon.caller.get(f"/api/v1/leads/{lead['id']}").json["lead"]["stage"] == "new"


# 9. An expired "Open in the connector" link, in a browser ---------------------------------


class _EightDaysAgo(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 8 * 24 * 3600


def test_an_expired_record_link_is_a_page_in_words_in_chromium(app, caller, browser) -> None:
    from connector.records.refs import RecordRef
    from connector.web.record_links import record_link

    contact = create_contact(caller)
    ref = RecordRef.of("contact", contact["id"])
    # As connector.web.record_links signs a link, eight days ago (they last seven).
    signing = URLSafeTimedSerializer(
        app.config["SECRET_KEY"], salt="record-link", signer=_EightDaysAgo
    )
    token = signing.dumps([caller.user_id, "contact", contact["id"]])
    with serve(app) as base:
        context = browser.new_context(viewport={"width": 320, "height": 700})
        try:
            page = context.new_page()
            # A link of today opens the record: the page below is about the age alone.
            fresh = record_link(base, app.config["SECRET_KEY"], caller.user_id, ref)
            response = page.goto(fresh)
            assert response is not None and response.status == 200
            assert "Hank Scorpio" in page.inner_text("body")

            response = page.goto(f"{base}/records/contact/{contact['id']}?t={token}")
            assert response is not None and response.status == 403
            assert response.headers["content-type"].startswith("text/html")
            shown = page.inner_text("body")
            assert "This link is not valid any more: open the record again from your mail." in shown
            assert "{" not in shown and '"message"' not in page.content()
            assert "Hank" not in shown  # nothing of the record
        finally:
            context.close()
