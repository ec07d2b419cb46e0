"""Gmail add-on events that are not what Google sends get a bare 400 (the shape of the
event) or a notification (a value in a form), never a 5xx."""

from __future__ import annotations

import copy
import json
from typing import Any

from tests import test_gmail
from tests.helpers import create_contact
from tests.test_gmail import PUBLIC_URL, Addon, find_action, mime, pushed, strings

# The add-on played as Google plays it, with test_gmail's fixtures.
google = test_gmail.google
gmail = test_gmail.gmail
addon = test_gmail.addon


def assert_bare_400(response: Any) -> dict[str, Any]:
    assert response.status_code == 400, (response.status_code, response.get_data(as_text=True))
    body = response.json
    assert body["code"] == 400 and body["status"] == "Bad Request" and body["message"]
    assert "action" not in body and "renderActions" not in body
    return body


def post_text(addon: Addon, path: str, text: str) -> Any:
    token = addon.google.system_token(PUBLIC_URL + path)
    return addon.client.post(
        path,
        data=text,
        content_type="application/json",
        headers={"Authorization": f"Bearer {token}"},
    )


def test_object_parts_of_the_event_that_are_lists_are_a_400(addon: Addon) -> None:
    create_contact(addon.caller)
    addon.gmail.add("m1", mime())
    card = pushed(addon.trigger("message", "m1"))
    note_form = pushed(addon.call(find_action(card, "Add note")))
    action = find_action(note_form, "Add note")
    path = action["function"].removeprefix(PUBLIC_URL)
    parameters = {p["key"]: p["value"] for p in action["parameters"]}
    good = addon.event("m1", parameters=parameters, form={"body": strings("Hi")})
    assert addon.post(path, good).status_code == 200

    def broken(change: Any) -> dict[str, Any]:
        event = copy.deepcopy(good)
        change(event)
        return event

    cases = {
        "gmail": lambda e: e.update(gmail=["m1"]),
        "gmail.messageId": lambda e: e["gmail"].update(messageId={"id": "m1"}),
        "gmail.toRecipients": lambda e: e["gmail"].update(toRecipients="hank@globex.test"),
        "commonEventObject": lambda e: e.update(commonEventObject=[1]),
        "commonEventObject.parameters": lambda e: e["commonEventObject"].update(
            parameters=[{"key": "state", "value": "x"}]
        ),
        "a parameter's value": lambda e: e["commonEventObject"]["parameters"].update(state=[1]),
        "commonEventObject.formInputs": lambda e: e["commonEventObject"].update(formInputs=[]),
        "a form input": lambda e: e["commonEventObject"]["formInputs"].update(body=["Hi"]),
        "stringInputs": lambda e: e["commonEventObject"]["formInputs"]["body"].update(
            stringInputs=["Hi"]
        ),
        "stringInputs.value": lambda e: e["commonEventObject"]["formInputs"]["body"][
            "stringInputs"
        ].update(value="Hi"),
        "authorizationEventObject": lambda e: e.update(authorizationEventObject=["token"]),
        "userIdToken": lambda e: e["authorizationEventObject"].update(userIdToken=[1]),
    }
    for what, change in cases.items():
        body = assert_bare_400(addon.post(path, broken(change)))
        assert body["errors"], what
    # Every endpoint reads the event the same way.
    for trigger in ("homepage", "message", "compose"):
        assert_bare_400(addon.post(f"/gmail/{trigger}", broken(cases["gmail"])))
        assert_bare_400(addon.post(f"/gmail/{trigger}", ["not", "an", "event"]))


def test_a_body_that_is_not_json_data_is_a_400(addon: Addon) -> None:
    depth = 100_000
    for text in ("[" * depth + "]" * depth, '{"gmail": ' * 2000 + "{}" + "}" * 2000):
        body = assert_bare_400(post_text(addon, "/gmail/homepage", text))
        assert "nested deeper than" in body["message"]
    body = assert_bare_400(post_text(addon, "/gmail/homepage", '{"gmail": {"messageId": '))
    assert body["message"].startswith("The body is not valid JSON")
    event = addon.event()
    event["commonEventObject"]["formInputs"] = {"query": strings("a\ud800")}
    text = json.dumps(event)  # ensure_ascii writes the surrogate as the escape \ud800
    body = assert_bare_400(post_text(addon, "/gmail/actions/search", text))
    assert "surrogate" in str(body["errors"])


def test_form_values_out_of_range_are_a_notification(addon: Addon) -> None:
    create_contact(addon.caller)
    addon.gmail.add("m1", mime())
    card = pushed(addon.trigger("message", "m1"))
    task_form = pushed(addon.call(find_action(card, "Create task")))
    for millis in ("99999999999999999999", "1e400", {"ms": 1}):
        form = {"title": strings("Call"), "due_date": {"dateInput": {"msSinceEpoch": millis}}}
        body = addon.call(find_action(task_form, "Create task"), form=form)
        assert body["renderActions"]["action"]["notification"]["text"] == "That date is not valid."
    lead_form = pushed(addon.call(find_action(card, "Create lead")))
    # The API's schema says what is wrong, in the words of the API's 400 (test_gmail checks
    # that they are the API's).
    invalid = "The request is not valid: expected_revenue: "
    for amount, says in (
        ("1e30", invalid + "Not a valid number."),
        ("NaN", invalid + "Special numeric values (nan or infinity) are not permitted."),
        ("Infinity", invalid + "Special numeric values (nan or infinity) are not permitted."),
        (
            "1000000000000",
            invalid + "Must be greater than or equal to 0 and less than or equal to "
            "999999999999.99.",
        ),
    ):
        body = addon.call(
            find_action(lead_form, "Create lead"), form={"expected_revenue": strings(amount)}
        )
        assert body["renderActions"]["action"]["notification"]["text"] == says, amount
    assert addon.caller.get("/api/v1/tasks?assignee=all").json == []
    assert addon.caller.get("/api/v1/search?q=quote").json["total"] == 0
