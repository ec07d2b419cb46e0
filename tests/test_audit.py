"""The audit log: sign-ins, keys issued and revoked, users deactivated, reactivated or given
another role, records archived, restored, merged and purged; `connector audit` prints it."""

from __future__ import annotations

import datetime as dt
import getpass
import re

import pytest
import sqlalchemy as sa

from connector.audit import service as audit
from connector.audit.models import AuditEvent
from connector.cli.audit import parse_since
from connector.db import session_scope
from connector.models import Contact
from connector.orgs.models import Role
from tests.helpers import create_contact, create_lead

CLI_ACTOR = f"cli:{getpass.getuser()}"


def stored(app) -> list[tuple[str | None, str, str, str, dict]]:
    """(organization id, actor, action, target, detail) of every event, oldest first."""
    with session_scope(app) as session:
        return [
            (e.organization_id, e.actor, e.action, e.target, e.detail)
            for e in audit.events(session)
        ]


def printed(runner, *args: str) -> list[list[str]]:
    """`connector audit`'s rows, split on the runs of spaces between columns."""
    result = runner.invoke(args=["audit", *args])
    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()
    assert header.split("  ")[0] == "TIME (UTC)"
    return [re.split(r"\s{2,}", row) for row in rows]


def test_user_changes_and_keys_from_the_command_line(app, runner, caller, make_caller) -> None:
    bob = make_caller(email="bob@acme.test", role=Role.MEMBER)
    for args in (
        ["users", "deactivate", "--email", bob.email],
        ["users", "reactivate", "--email", bob.email],
        ["users", "set-role", "--email", bob.email, "--role", "admin"],
        ["keys", "issue", "--email", bob.email, "--label", "laptop"],
        ["keys", "revoke", "1"],
        # Nothing changes, so nothing is logged:
        ["users", "reactivate", "--email", bob.email],
        ["keys", "revoke", "1"],
    ):
        result = runner.invoke(args=args)
        assert result.exit_code == 0, result.output
    org, bob_target = caller.org_id, f"user:{bob.user_id}"
    assert stored(app) == [
        (org, CLI_ACTOR, "user.deactivated", bob_target, {"email": bob.email}),
        (org, CLI_ACTOR, "user.reactivated", bob_target, {"email": bob.email}),
        (
            org,
            CLI_ACTOR,
            "user.role_changed",
            bob_target,
            {"email": bob.email, "from": "member", "to": "admin"},
        ),
        (org, CLI_ACTOR, "key.issued", "key:3", {"user": bob.email, "label": "laptop"}),
        (org, CLI_ACTOR, "key.revoked", "key:1", {"user": caller.email, "label": "test"}),
    ]
    rows = printed(runner)
    assert [r[1:5] for r in rows] == [
        ["Acme", CLI_ACTOR, "user.deactivated", bob_target],
        ["Acme", CLI_ACTOR, "user.reactivated", bob_target],
        ["Acme", CLI_ACTOR, "user.role_changed", bob_target],
        ["Acme", CLI_ACTOR, "key.issued", "key:3"],
        ["Acme", CLI_ACTOR, "key.revoked", "key:1"],
    ]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", rows[0][0])
    assert rows[2][5] == "email=bob@acme.test from=member to=admin"


def test_record_archive_restore_merge_and_purge(app, runner, caller) -> None:
    lead = create_lead(caller)
    ana = create_contact(caller, "Ana", ["ana@globex.test"])
    dup = create_contact(caller, "Ana D", ["ana.d@globex.test"])
    assert caller.delete(f"/api/v1/leads/{lead['id']}").status_code == 204
    assert caller.post(f"/api/v1/leads/{lead['id']}/restore").status_code == 200
    merged = caller.post(f"/api/v1/contacts/{ana['id']}/merge", json={"from": dup["id"]})
    assert merged.status_code == 200
    assert caller.delete(f"/api/v1/contacts/{ana['id']}").status_code == 204
    # What was refused leaves no event: a stale version, a member's restore.
    stale = caller.delete(f"/api/v1/leads/{lead['id']}", headers={"If-Match": '"1"'})
    assert stale.status_code == 412

    dry = runner.invoke(args=["purge", "--older-than", "0h", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    purged = runner.invoke(args=["purge", "--older-than", "0h"])
    assert purged.exit_code == 0, purged.output
    with session_scope(app) as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Contact)) == 0
    nothing = runner.invoke(args=["purge", "--older-than", "0h"])  # nothing left: no event
    assert nothing.exit_code == 0, nothing.output

    org, actor = caller.org_id, caller.email
    events = stored(app)
    assert events[:4] == [
        (org, actor, "record.archived", f"lead:{lead['id']}", {}),
        (org, actor, "record.restored", f"lead:{lead['id']}", {}),
        (org, actor, "record.merged", f"contact:{ana['id']}", {"from": f"contact:{dup['id']}"}),
        (org, actor, "record.archived", f"contact:{ana['id']}", {}),
    ]
    assert len(events) == 5
    org_id, who, action, target, detail = events[4]
    assert (org_id, who, action, target) == (None, CLI_ACTOR, "records.purged", "")
    assert detail["older_than"] == "0h" and detail["contact"] == 1 and detail["lead"] == 0
    # An event of every organization shows with each one's.
    rows = printed(runner, "--org", "Acme")
    assert [r[1:4] for r in rows][-1] == ["(all)", CLI_ACTOR, "records.purged"]


def test_only_refused_changes_are_not_logged(app, caller, make_caller) -> None:
    member = make_caller(email="bob@acme.test", role=Role.MEMBER)
    lead = create_lead(caller)
    stale = caller.delete(f"/api/v1/leads/{lead['id']}", headers={"If-Match": '"9"'})
    assert stale.status_code == 412
    assert member.delete(f"/api/v1/leads/{lead['id']}").status_code == 204
    assert member.post(f"/api/v1/leads/{lead['id']}/restore").status_code == 403
    assert [e[1:3] for e in stored(app)] == [("bob@acme.test", "record.archived")]


def test_revoking_a_key_on_the_account_page(app, client, caller) -> None:
    with client.session_transaction() as session:
        session["user_id"] = caller.user_id
    assert client.get("/account").status_code == 200
    with client.session_transaction() as session:
        csrf = session["csrf"]
    response = client.post("/account/keys/1/revoke", data={"csrf": csrf})
    assert response.status_code == 302
    assert stored(app) == [
        (
            caller.org_id,
            caller.email,
            "key.revoked",
            "key:1",
            {"user": caller.email, "label": "test"},
        )
    ]


@pytest.mark.parametrize("client_kind", ["web", "outlook"])
def test_sign_ins_are_logged(app, runner, caller, idp, browser, client_kind: str) -> None:
    _fake, base = idp
    context = browser.new_context()
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        page.goto(f"{base}/connect?client={client_kind}")
        page.get_by_role("link", name="Sign in with Google").click()
        page.get_by_role("link", name="Allow").click()
        page.wait_for_load_state()
        page.get_by_text(caller.email).first.wait_for()
    finally:
        context.close()
    org, user = caller.org_id, f"user:{caller.user_id}"
    expected = [
        (org, caller.email, "user.signed_in", user, {"provider": "google", "client": client_kind})
    ]
    if client_kind == "outlook":  # the dialog hands the pane a key of its own
        expected.append(
            (
                org,
                caller.email,
                "key.issued",
                "key:2",
                {"user": caller.email, "label": "Outlook add-in"},
            )
        )
    assert stored(app) == expected
    assert [r[3] for r in printed(runner)][0] == "user.signed_in"


def test_since_and_org_choose_what_is_printed(app, runner, caller, make_caller) -> None:
    other = make_caller("Initech", "peter@initech.test")
    now = dt.datetime.now(dt.UTC)
    with session_scope(app) as session:
        for org_id, days_ago, action in [
            (caller.org_id, 30, "user.deactivated"),
            (caller.org_id, 3, "user.reactivated"),
            (other.org_id, 1, "key.revoked"),
        ]:
            event = audit.record(session, org_id=org_id, actor="cli:test", action=action)
            event.at = now - dt.timedelta(days=days_ago)
    assert [r[3] for r in printed(runner)] == ["user.reactivated", "key.revoked"]  # 7d
    assert [r[3] for r in printed(runner, "--since", "60d")] == [
        "user.deactivated",
        "user.reactivated",
        "key.revoked",
    ]
    since = (now - dt.timedelta(days=10)).date().isoformat()
    assert [r[3] for r in printed(runner, "--since", since, "--org", "Acme")] == [
        "user.reactivated"
    ]
    assert [r[1] for r in printed(runner, "--since", "2w", "--org", "Initech")] == ["Initech"]
    empty = runner.invoke(args=["audit", "--since", "12h"])
    assert empty.exit_code == 0 and empty.output.startswith("No events since ")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--since", "yesterday"], 2, "neither an age"),
        (["--since", "2026-13-01"], 2, "neither an age"),
        (["--org", "Nowhere"], 1, "There is no organization 'Nowhere'"),
    ],
)
def test_bad_audit_arguments(runner, args, code: int, message: str) -> None:
    result = runner.invoke(args=["audit", *args])
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output


def test_parse_since() -> None:
    now = dt.datetime(2026, 5, 10, 12, 0, tzinfo=dt.UTC)
    assert parse_since("7d", now) == dt.datetime(2026, 5, 3, 12, 0, tzinfo=dt.UTC)
    assert parse_since("12h", now) == dt.datetime(2026, 5, 10, 0, 0, tzinfo=dt.UTC)
    assert parse_since("2026-05-01") == dt.datetime(2026, 5, 1, tzinfo=dt.UTC)
    assert parse_since("2026-05-01T09:30+02:00") == dt.datetime(2026, 5, 1, 7, 30, tzinfo=dt.UTC)


def test_the_actor_is_kept_as_text_beside_the_user(app, caller) -> None:
    from connector.orgs.models import User

    with session_scope(app) as session:
        user = session.get(User, caller.user_id)
        audit.record(session, org_id=caller.org_id, actor=user, action="user.signed_in")
        audit.record(session, org_id=None, actor=None, action="records.purged")
    with session_scope(app) as session:
        by_user, by_nobody = session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id))
        assert (by_user.actor_id, by_user.actor) == (caller.user_id, caller.email)
        assert (by_nobody.actor_id, by_nobody.actor) == (None, "connector")


def test_creating_a_user_is_audited(runner) -> None:
    created = runner.invoke(
        args=[
            "users",
            "create",
            "--org",
            "Initech",
            "--email",
            "peter@initech.test",
            "--name",
            "Peter",
        ]
    )
    assert created.exit_code == 0, created.output
    log = runner.invoke(args=["audit", "--org", "Initech"])
    assert "user.created" in log.output and "user:" in log.output
