"""An organization's mail domain and aliases: `connector orgs mail-domain`, `connector aliases
create|list|delete`, /api/v1/aliases (admins only), each change in the audit log."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from connector.audit.models import AuditEvent
from connector.db import session_scope
from connector.mail.models import Alias
from connector.orgs.models import Role


def cli(runner: Any, *args: str, ok: bool = True) -> str:
    result = runner.invoke(args=list(args))
    assert (result.exit_code == 0) is ok, result.output
    return result.output


def actions(app: Any) -> list[tuple[str, str, dict]]:
    with session_scope(app) as session:
        return [
            (e.action, e.target, e.detail)
            for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))
            if e.action.startswith(("alias.", "mail_domain."))
        ]


def aliases(app: Any) -> dict[str, Alias]:
    with session_scope(app) as session:
        found = {a.address: a for a in session.scalars(select(Alias))}
        session.expunge_all()
        return found


def test_the_commands_set_the_domain_and_manage_aliases(app, runner, caller, make_caller) -> None:
    make_caller(email="bob@acme.test", role=Role.MEMBER)
    assert "There is no organization" in cli(
        runner, "orgs", "mail-domain", "--org", "Nowhere", "--domain", "acme.test", ok=False
    )
    assert "free-mail" in cli(
        runner, "orgs", "mail-domain", "--org", "Acme", "--domain", "gmail.com", ok=False
    )
    # No domain yet: an alias cannot be made.
    no_domain = cli(
        runner, "aliases", "create", "--org", "Acme", "--address", "sales@acme.test",
        "--creates", "lead", ok=False,
    )  # fmt: skip
    assert "no mail domain" in no_domain
    out = cli(runner, "orgs", "mail-domain", "--org", "Acme", "--domain", "ACME.test")
    assert "mail domain is acme.test" in out

    out = cli(
        runner, "aliases", "create", "--org", "Acme", "--address", "Sales@Acme.test",
        "--creates", "lead", "--owner", "bob@acme.test",
    )  # fmt: skip
    assert "Created alias sales@acme.test" in out and "acknowledgment: no" in out
    # A bare --auto-reply: the built-in acknowledgment, then the next option is read as one.
    out = cli(
        runner, "aliases", "create", "--org", "Acme", "--address", "support@acme.test",
        "--creates", "ticket", "--auto-reply", "--accept", "contacts",
    )  # fmt: skip
    assert "acknowledgment: built-in" in out
    caller.post(
        "/api/v1/templates",
        json={"name": "Got it", "subject": "We got it", "body_html": "<p>Thanks</p>"},
    )
    out = cli(
        runner, "aliases", "create", "--org", "Acme", "--address", "help@acme.test",
        "--creates", "task", "--auto-reply", "Got it",
    )  # fmt: skip
    assert "template 'Got it'" in out
    assert "no template named 'Nope'" in cli(
        runner, "aliases", "create", "--org", "Acme", "--address", "x@acme.test",
        "--creates", "task", "--auto-reply", "Nope", ok=False,
    )  # fmt: skip
    # What the service refuses is a clear message, never a traceback.
    for address, message in [
        ("sales@other.test", "not at acme.test"),
        ("sales@acme.test", "is an alias already"),
        ("reply+x@acme.test", "'+'"),
    ]:
        out = cli(
            runner, "aliases", "create", "--org", "Acme", "--address", address,
            "--creates", "lead", ok=False,
        )  # fmt: skip
        assert message in out and "Traceback" not in out
    assert "bob@umbrella.test is no user" in cli(
        runner, "aliases", "create", "--org", "Acme", "--address", "y@acme.test",
        "--creates", "lead", "--owner", "bob@umbrella.test", ok=False,
    )  # fmt: skip

    found = aliases(app)
    assert set(found) == {"sales@acme.test", "support@acme.test", "help@acme.test"}
    assert found["support@acme.test"].auto_reply and found["support@acme.test"].accept == "contacts"
    assert found["support@acme.test"].auto_reply_template_id is None
    assert found["help@acme.test"].auto_reply_template_id is not None
    assert not found["sales@acme.test"].auto_reply

    listed = cli(runner, "aliases", "list", "--org", "Acme")
    assert "sales@acme.test" in listed and "bob@acme.test" in listed
    assert "'Got it'" in listed and "built-in" in listed

    assert "Deleted alias sales@acme.test" in cli(runner, "aliases", "delete", "SALES@acme.test")
    assert "There is no alias" in cli(runner, "aliases", "delete", "sales@acme.test", ok=False)
    assert "sales@acme.test" not in aliases(app)

    events = actions(app)
    assert [a for a, _, _ in events] == [
        "mail_domain.set",
        "alias.created",
        "alias.created",
        "alias.created",
        "alias.deleted",
    ]
    assert events[0][2] == {"domain": "acme.test", "before": None}
    assert events[1][2]["address"] == "sales@acme.test"
    assert events[-1][1] == f"alias:{found['sales@acme.test'].id}"


def test_a_domain_is_one_organizations(app, runner, caller, make_caller) -> None:
    make_caller(org="Umbrella", email="wes@umbrella.test")
    cli(runner, "orgs", "mail-domain", "--org", "Acme", "--domain", "acme.test")
    taken = cli(
        runner, "orgs", "mail-domain", "--org", "Umbrella", "--domain", "acme.test", ok=False
    )
    assert "is the mail domain of Acme" in taken
    assert "No aliases." in cli(runner, "aliases", "list", "--org", "Umbrella")


def _domain(runner: Any, org: str = "Acme", domain: str = "acme.test") -> None:
    cli(runner, "orgs", "mail-domain", "--org", org, "--domain", domain)


def test_the_api_lets_admins_manage_aliases(app, runner, caller, make_caller) -> None:
    member = make_caller(email="bob@acme.test", role=Role.MEMBER)
    _domain(runner)
    template = caller.post(
        "/api/v1/templates",
        json={"name": "Got it", "subject": "We got it", "body_html": "<p>Thanks</p>"},
    ).json

    created = caller.post(
        "/api/v1/aliases",
        json={
            "address": "Support@acme.test",
            "creates": "ticket",
            "owner_id": member.user_id,
            "accept": "contacts",
            "auto_reply_template_id": template["id"],
        },
    )
    assert created.status_code == 201, created.json
    alias = created.json
    assert alias["address"] == "support@acme.test"
    assert alias["owner_email"] == "bob@acme.test"
    assert alias["auto_reply"] is True and alias["auto_reply_template_id"] == template["id"]
    plain = caller.post("/api/v1/aliases", json={"address": "sales@acme.test", "creates": "lead"})
    assert plain.status_code == 201
    assert plain.json["accept"] == "everyone" and plain.json["auto_reply"] is False

    listed = caller.get("/api/v1/aliases")
    assert listed.status_code == 200
    assert [a["address"] for a in listed.json] == ["sales@acme.test", "support@acme.test"]
    assert caller.get(f"/api/v1/aliases/{alias['id']}").json == alias

    # Bad input: the one error shape, a 4xx, nothing written.
    for body, status in [
        ({"address": "sales@acme.test", "creates": "lead"}, 409),
        ({"address": "x@elsewhere.test", "creates": "lead"}, 400),
        ({"address": "not an address", "creates": "lead"}, 400),
        ({"address": "vertrieb-ä@acme.test", "creates": "lead"}, 400),
        ({"address": "y@acme.test", "creates": "opportunity"}, 400),
        ({"address": "y@acme.test", "creates": "lead", "owner_id": 999_999}, 400),
        ({"address": "y@acme.test", "creates": "lead", "auto_reply_template_id": 999_999}, 400),
        ({"address": "y@acme.test", "creates": "lead", "accept": "friends"}, 400),
    ]:
        refused = caller.post("/api/v1/aliases", json=body)
        assert refused.status_code == status, (body, refused.json)
        assert {"code", "status", "message"} <= set(refused.json)
    assert len(caller.get("/api/v1/aliases").json) == 2
    nested = caller.client.post(
        "/api/v1/aliases",
        data="[" * 10_000 + "]" * 10_000,
        content_type="application/json",
        headers=caller.headers,
    )
    assert nested.status_code == 400 and "nested deeper than" in nested.json["message"]
    assert caller.get("/api/v1/aliases/99999999999").status_code == 404
    assert caller.get("/api/v1/aliases/424242").json["code"] == 404

    # Members: 403, whatever they ask.
    assert member.get("/api/v1/aliases").status_code == 403
    assert member.get(f"/api/v1/aliases/{alias['id']}").status_code == 403
    assert member.delete(f"/api/v1/aliases/{alias['id']}").status_code == 403
    refused = member.post("/api/v1/aliases", json={"address": "z@acme.test", "creates": "lead"})
    assert refused.status_code == 403 and refused.json["code"] == 403

    # Another organization's admin: its aliases are not there at all.
    other = make_caller(org="Umbrella", email="wes@umbrella.test")
    assert other.get(f"/api/v1/aliases/{alias['id']}").status_code == 404
    assert other.delete(f"/api/v1/aliases/{alias['id']}").status_code == 404
    assert other.get("/api/v1/aliases").json == []
    # Without a key: 401.
    assert caller.client.get("/api/v1/aliases").status_code == 401

    assert caller.delete(f"/api/v1/aliases/{alias['id']}").status_code == 204
    assert caller.get(f"/api/v1/aliases/{alias['id']}").status_code == 404
    assert caller.delete(f"/api/v1/aliases/{alias['id']}").status_code == 404
    assert [a["address"] for a in caller.get("/api/v1/aliases").json] == ["sales@acme.test"]

    events = actions(app)
    assert [a for a, _, _ in events] == [
        "mail_domain.set",
        "alias.created",
        "alias.created",
        "alias.deleted",
    ]
    assert events[1][2]["template"] == "Got it"
    with session_scope(app) as session:
        by = session.scalars(
            select(AuditEvent.actor).where(AuditEvent.action.like("alias.%"))
        ).all()
    assert set(by) == {"ann@acme.test"}


def test_the_openapi_document_describes_the_aliases(client) -> None:
    spec = client.get("/api/v1/openapi.json").json
    assert set(spec["paths"]["/api/v1/aliases"]) >= {"get", "post"}
    assert set(spec["paths"]["/api/v1/aliases/{alias_id}"]) >= {"get", "delete"}
    alias_in = spec["components"]["schemas"]["AliasIn"]
    assert set(alias_in["required"]) == {"address", "creates"}
    assert alias_in["properties"]["creates"]["enum"] == ["lead", "ticket", "task"]
