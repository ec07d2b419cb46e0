"""Email templates: listing, creating, rendering for a record, and the sandbox."""

from __future__ import annotations

from connector.orgs.models import Role
from tests.helpers import create_company, create_contact, create_lead


def make_template(caller, name="Hello", subject="Hi {{ contact.first_name }}", body=None):
    body = body or (
        "<p>Dear {{ contact.name }} of {{ company.name }},</p>"
        "<p>about {{ lead.title }}.</p><p>{{ user.name }}</p>"
    )
    return caller.post(
        "/api/v1/templates", json={"name": name, "subject": subject, "body_html": body}
    )


def test_create_list_and_render_for_a_lead(caller) -> None:
    create_company(caller, "Globex & Sons", ["globex.test"])
    contact = create_contact(caller, "Hank <b>Scorpio</b>", ["hank@globex.test"])
    lead = create_lead(caller, contact_id=contact["id"], title="50 seats")
    created = make_template(caller)
    assert created.status_code == 201
    listed = caller.get("/api/v1/templates").json
    assert [t["name"] for t in listed] == ["Hello"]
    response = caller.post(
        f"/api/v1/templates/{created.json['id']}/render",
        json={"record": {"type": "lead", "id": lead["id"]}},
    )
    assert response.status_code == 200, response.json
    rendered = response.json
    assert rendered["subject"] == "Hi Hank"
    # Values are escaped in the HTML body: a name cannot inject markup.
    assert "Hank &lt;b&gt;Scorpio&lt;/b&gt;" in rendered["body_html"]
    assert "Globex &amp; Sons" in rendered["body_html"]
    assert "about 50 seats." in rendered["body_html"]
    assert "ann" in rendered["body_html"]
    assert "Dear Hank <b>Scorpio</b> of Globex & Sons" in rendered["body_text"]


def test_render_for_a_contact_without_company_leaves_blanks(caller) -> None:
    contact = create_contact(caller, "Joe", ["joe@gmail.com"])
    template = make_template(caller).json
    rendered = caller.post(
        f"/api/v1/templates/{template['id']}/render",
        json={"record": {"type": "contact", "id": contact["id"]}},
    ).json
    assert "Dear Joe of ," in rendered["body_html"]


def test_the_sandbox_reaches_nothing(caller) -> None:
    contact = create_contact(caller)
    attempts = [
        "{{ contact.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ contact.update({'name': 'x'}) }}",
        "{{ config }}{{ request }}{{ self }}",
    ]
    for n, body in enumerate(attempts):
        created = make_template(caller, name=f"evil {n}", body=body)
        if created.status_code != 201:
            assert created.status_code == 400
            continue
        response = caller.post(
            f"/api/v1/templates/{created.json['id']}/render",
            json={"record": {"type": "contact", "id": contact["id"]}},
        )
        assert response.status_code in (200, 400), body
        text = response.get_data(as_text=True)
        for leak in ("test-secret", "subclasses", "<class", "os.", "SECRET"):
            assert leak not in text, (body, text)


def test_template_errors(caller, make_caller) -> None:
    assert make_template(caller, body="{{ unclosed").status_code == 400
    assert make_template(caller, subject="{% if %}").status_code == 400
    assert make_template(caller).status_code == 201
    assert make_template(caller).status_code == 409
    member = make_caller("Acme", "max@acme.test", Role.MEMBER)
    assert make_template(member, name="Mine").status_code == 403
    assert caller.post("/api/v1/templates/999/render", json={}).status_code == 404
    template = caller.get("/api/v1/templates").json[0]
    response = caller.post(
        f"/api/v1/templates/{template['id']}/render", json={"record": {"type": "lead", "id": 999}}
    )
    assert response.status_code == 404
    other = make_caller("Other org", "olga@other.test")
    assert other.get("/api/v1/templates").json == []
    assert other.post(f"/api/v1/templates/{template['id']}/render", json={}).status_code == 404
