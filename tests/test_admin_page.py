"""The admin page (/admin): who gets in, people and roles, API keys, sign-in domains, and
templates with a preview; the one-time sign-in link of `connector admin-link`."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select

from connector.db import session_scope
from connector.email_templates.models import EmailTemplate
from connector.orgs.models import Role, SignInDomain, User
from tests.fakes.servers import serve
from tests.helpers import create_contact, sign_in


def text(response: Any) -> str:
    """The page's words: tags dropped, entities read."""
    words = re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))
    return re.sub(r"\s+", " ", html.unescape(words))


def role_of(app, email: str) -> str:
    with session_scope(app) as session:
        return str(session.scalar(select(User.role).where(User.email == email)))


def test_who_gets_in(client, caller, make_caller) -> None:
    anonymous = client.get("/admin")
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"].startswith("/connect?next=/admin")
    member = make_caller(email="bob@acme.test", role=Role.MEMBER)
    sign_in(client, member.user_id)
    refused = client.get("/admin", headers={"Accept": "text/html"})
    assert refused.status_code == 403
    assert "Only the organization's admins" in text(refused)
    assert client.post("/admin/templates", data={"csrf": "test-csrf"}).status_code == 403
    sign_in(client, caller.user_id)
    assert client.get("/admin/").status_code == 200  # with a slash too
    page = client.get("/admin")
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    assert "bob@acme.test" in text(page) and "Reply templates" in text(page)


def test_roles_and_the_last_admin(app, client, caller, make_caller) -> None:
    member = make_caller(email="bob@acme.test", role=Role.MEMBER)
    other_org = make_caller(org="Umbrella", email="wes@umbrella.test")
    csrf = sign_in(client, caller.user_id)
    made = client.post(f"/admin/users/{member.user_id}/role", data={"csrf": csrf, "role": "admin"})
    assert made.status_code == 303
    assert role_of(app, "bob@acme.test") == "admin"
    assert (
        client.post(
            f"/admin/users/{member.user_id}/role", data={"csrf": "forged", "role": "member"}
        ).status_code
        == 403
    )
    assert role_of(app, "bob@acme.test") == "admin"
    client.post(f"/admin/users/{member.user_id}/role", data={"csrf": csrf, "role": "member"})
    last = client.post(f"/admin/users/{caller.user_id}/role", data={"csrf": csrf, "role": "member"})
    assert last.status_code == 400 and "no admin left" in text(last)
    assert role_of(app, "ann@acme.test") == "admin"
    elsewhere = client.post(
        f"/admin/users/{other_org.user_id}/role", data={"csrf": csrf, "role": "member"}
    )
    assert elsewhere.status_code == 404
    assert role_of(app, "wes@umbrella.test") == "admin"


def test_revoking_a_key_refuses_it_at_once(client, caller, make_caller) -> None:
    from connector.orgs.models import ApiKey

    member = make_caller(email="bob@acme.test", role=Role.MEMBER)
    assert member.get("/api/v1/me").status_code == 200
    with session_scope(client.application) as session:
        key = session.scalar(select(ApiKey).where(ApiKey.user_id == member.user_id))
        key_id, prefix = key.id, key.prefix
    csrf = sign_in(client, caller.user_id)
    page = client.get("/admin").get_data(as_text=True)
    assert f"/admin/keys/{key_id}/revoke" in page and f"{prefix}…" in page
    assert member.key not in page  # never the secret
    assert client.post(f"/admin/keys/{key_id}/revoke", data={"csrf": csrf}).status_code == 303
    assert member.get("/api/v1/me").status_code == 401
    assert caller.get("/api/v1/me").status_code == 200


def test_sign_in_domains(app, client, caller) -> None:
    csrf = sign_in(client, caller.user_id)
    added = client.post("/admin/domains", data={"csrf": csrf, "domain": "Acme.test"})
    assert added.status_code == 303
    with session_scope(app) as session:
        assert session.scalars(select(SignInDomain.domain)).all() == ["acme.test"]
    free = client.post("/admin/domains", data={"csrf": csrf, "domain": "gmail.com"})
    assert free.status_code == 400
    nonsense = client.post("/admin/domains", data={"csrf": csrf, "domain": "not a domain"})
    assert nonsense.status_code == 400
    client.post("/admin/domains", data={"csrf": csrf, "domain": "acme.test", "remove": "1"})
    with session_scope(app) as session:
        assert session.scalars(select(SignInDomain.domain)).all() == []


def test_templates_with_a_preview(app, client, caller) -> None:
    create_contact(caller, "Hank Scorpio", ["hank@globex.test"])
    csrf = sign_in(client, caller.user_id)
    draft = {
        "csrf": csrf,
        "name": "Follow-up",
        "subject": "Hello {{ contact.first_name }}",
        "body_html": "<p>Dear {{ contact.name }},</p><script>x()</script>",
        "preview_for": "hank@globex.test",
    }
    preview = client.post("/admin/templates", data={**draft, "action": "preview"})
    assert preview.status_code == 200
    assert "Hello Hank" in text(preview) and "Dear Hank Scorpio" in text(preview)
    assert "<script>" not in preview.get_data(as_text=True)
    with session_scope(app) as session:
        assert session.scalars(select(EmailTemplate)).all() == []  # a preview saves nothing
    bad = client.post(
        "/admin/templates", data={**draft, "preview_for": "nobody@x.test", "action": "preview"}
    )
    assert bad.status_code == 400 and "No contact has the address" in text(bad)
    live = client.post("/admin/templates/preview", data=draft)
    assert live.json == {"subject": "Hello Hank", "text": "Dear Hank Scorpio,"}
    broken_live = client.post("/admin/templates/preview", data={**draft, "subject": "{{ x."})
    assert "error" in broken_live.json
    assert client.post("/admin/templates/preview", data={**draft, "csrf": "x"}).status_code == 403
    broken = client.post(
        "/admin/templates", data={**draft, "subject": "{{ contact.", "action": "save"}
    )
    assert broken.status_code == 400
    assert 'value="{{ contact."' in broken.get_data(as_text=True)  # what was typed stays
    saved = client.post("/admin/templates", data={**draft, "action": "save"})
    assert saved.status_code == 303
    listed = caller.get("/api/v1/templates").json
    assert [t["name"] for t in listed] == ["Follow-up"]
    template_id = listed[0]["id"]
    edited = client.post(
        f"/admin/templates/{template_id}",
        data={**draft, "name": "Follow-up 2", "action": "save"},
    )
    assert edited.status_code == 303
    assert [t["name"] for t in caller.get("/api/v1/templates").json] == ["Follow-up 2"]
    assert client.get(f"/admin/templates/{template_id}").status_code == 200
    deleted = client.post(f"/admin/templates/{template_id}/delete", data={"csrf": csrf})
    assert deleted.status_code == 303
    assert caller.get("/api/v1/templates").json == []


def test_admin_link_signs_in_once(app, client, runner, caller, make_caller) -> None:
    make_caller(email="bob@acme.test", role=Role.MEMBER)
    refused = runner.invoke(args=["admin-link", "--email", "bob@acme.test"])
    assert refused.exit_code != 0 and "not an admin" in refused.output
    result = runner.invoke(args=["admin-link", "--email", "ann@acme.test"])
    assert result.exit_code == 0, result.output
    link = re.search(r"https?://\S+/admin/sign-in\?t=\S+", result.output).group(0)
    parts = urlsplit(link)
    first = client.get(f"{parts.path}?{parts.query}")
    assert first.status_code == 303 and first.headers["Location"].endswith("/admin")
    assert client.get("/admin").status_code == 200
    again = app.test_client().get(f"{parts.path}?{parts.query}", headers={"Accept": "text/html"})
    assert again.status_code == 403 and "not valid any more" in text(again)
    forged = app.test_client().get("/admin/sign-in?t=forged", headers={"Accept": "text/html"})
    assert forged.status_code == 403


def test_the_page_in_a_browser(app, caller, browser, runner) -> None:
    create_contact(caller, "Hank Scorpio", ["hank@globex.test"])
    with serve(app) as base:
        app.config["PUBLIC_URL"] = base
        link = re.search(
            r"\S+/admin/sign-in\?t=\S+",
            runner.invoke(args=["admin-link", "--email", "ann@acme.test"]).output,
        ).group(0)
        context = browser.new_context()
        page = context.new_page()
        try:
            page.goto(link)
            page.get_by_role("heading", name="Acme: administration").wait_for()
            page.get_by_role("link", name="New template").click()
            page.get_by_label("Name", exact=True).fill("Welcome")
            page.get_by_label("Subject").fill("Welcome, {{ contact.first_name }}")
            page.locator("#body_html").fill("<p>Hi {{ contact.name }}</p>")
            page.get_by_label("Preview for").fill("hank@globex.test")
            # As you type: the subject and text for Hank, before any button.
            from playwright.sync_api import expect

            # A bound, not a measure: the preview waits 400 ms for typing to pause, then asks
            # the server, which shares two cores with the browser and the other tests.
            answered = 20_000
            expect(page.locator("#live-subject")).to_have_text("Welcome, Hank", timeout=answered)
            expect(page.locator("#live-text")).to_have_text("Hi Hank Scorpio", timeout=answered)
            page.get_by_label("Subject").fill("Welcome, {{ contact.")
            expect(page.locator("#live-error")).not_to_have_text("", timeout=answered)
            page.get_by_label("Subject").fill("Welcome, {{ contact.first_name }}")
            page.get_by_role("button", name="Preview").click()
            page.get_by_text("Welcome, Hank").wait_for()
            page.get_by_role("button", name="Save").click()
            page.get_by_role("status").get_by_text("Template 'Welcome' saved.").wait_for()
            page.get_by_role("link", name="Welcome").wait_for()
        finally:
            context.close()


def test_deactivating_someone_refuses_them_at_once_and_is_audited(app, client, caller, make_caller):
    member = make_caller(email="bob@acme.test", role=Role.MEMBER)
    assert member.get("/api/v1/me").status_code == 200
    csrf = sign_in(client, caller.user_id)
    off = client.post(f"/admin/users/{member.user_id}/access", data={"csrf": csrf, "active": "0"})
    assert off.status_code == 303
    assert member.get("/api/v1/me").status_code == 401
    page = text(client.get("/admin"))
    assert "Deactivated" in page and "user.deactivated" in page
    itself = client.post(
        f"/admin/users/{caller.user_id}/access", data={"csrf": csrf, "active": "0"}
    )
    assert itself.status_code == 400
    on = client.post(f"/admin/users/{member.user_id}/access", data={"csrf": csrf, "active": "1"})
    assert on.status_code == 303
    assert member.get("/api/v1/me").status_code == 200
    client.post(f"/admin/users/{member.user_id}/role", data={"csrf": csrf, "role": "admin"})
    page = text(client.get("/admin"))
    assert "user.reactivated" in page and "user.role_changed" in page


# Import and export from the page ------------------------------------------------------------


def test_an_import_runs_as_a_job_with_its_progress_in_a_browser(
    queue_app, caller, browser, runner, worker, tmp_path
) -> None:
    rows = ['"First Name","Last Name","E-mail Address","Company"']
    rows += [f'"Person","{n}","person{n}@initech.test","Initech"' for n in range(300)]
    rows += ['"Nobody","Bad","not an address","Initech"']
    upload = tmp_path / "outlook.csv"
    upload.write_text("\n".join(rows) + "\n", encoding="utf-8-sig")
    worker()
    with serve(queue_app) as base:
        queue_app.config["PUBLIC_URL"] = base
        link = re.search(
            r"\S+/admin/sign-in\?t=\S+",
            runner.invoke(args=["admin-link", "--email", "ann@acme.test"]).output,
        ).group(0)
        context = browser.new_context()
        page = context.new_page()
        try:
            page.goto(link)
            page.get_by_label("Import", exact=True).select_option("contacts")
            page.get_by_label("from a file").set_input_files(str(upload))
            page.get_by_role("button", name="Import", exact=True).click()
            page.get_by_role("heading", name="Import of outlook.csv (contacts)").wait_for()
            # The page reloads itself until the worker is done.
            page.locator("#import-summary").wait_for(timeout=60_000)
            summary = page.locator("#import-summary").inner_text()
            assert "created 300" in summary and "rejected 1" in summary
            with page.expect_download() as download:
                page.get_by_role("link", name="The rejected rows").click()
            rejected = Path(download.value.path()).read_text(encoding="utf-8-sig")
            assert "not an address" in rejected and ",302," in rejected  # its line
        finally:
            context.close()
    [found] = caller.get("/api/v1/lookup?email=person7@initech.test").json["results"]
    assert found["contact"]["name"] == "Person 7"
    log = runner.invoke(args=["audit", "--org", "Acme"]).output
    assert "records.imported" in log


def test_export_from_the_page_reimports_unchanged(app, client, caller, runner, tmp_path) -> None:
    create_contact(caller, "Hank Scorpio", ["hank@globex.test", "h@globex.test"])
    csrf = sign_in(client, caller.user_id)
    del csrf
    response = client.get("/admin/export?kind=contacts&format=csv")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment")
    exported = tmp_path / "contacts.csv"
    exported.write_bytes(response.data)
    result = runner.invoke(args=["import", "contacts", str(exported), "--org", "Acme"])
    assert "created 0, updated 0, unchanged 1, rejected 0" in result.output
    assert client.get("/admin/export?kind=nothing").status_code == 400
    lines = client.get("/admin/export?kind=contacts&format=jsonl").get_data(as_text=True)
    assert '"hank@globex.test"' in lines
    assert client.get("/admin/imports/0123456789abcdef").status_code == 404
    assert client.get("/admin/imports/..%2F..%2Fetc").status_code == 404


def test_the_entra_tenant(app, client, caller, make_caller) -> None:
    from connector.orgs.models import Organization

    make_caller(org="Umbrella", email="wes@umbrella.test")
    csrf = sign_in(client, caller.user_id)
    tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
    assert client.post("/admin/tenant", data={"csrf": csrf, "tenant": tenant}).status_code == 303
    assert client.post("/admin/tenant", data={"csrf": csrf, "tenant": "nope"}).status_code == 400
    with session_scope(app) as session:
        umbrella = session.scalar(select(Organization).where(Organization.name == "Umbrella"))
        umbrella_id = umbrella.id
        wes_id = session.scalar(select(User.id).where(User.email == "wes@umbrella.test"))
    other = app.test_client()
    other_csrf = sign_in(other, wes_id)
    taken = other.post("/admin/tenant", data={"csrf": other_csrf, "tenant": tenant})
    assert taken.status_code == 409
    with session_scope(app) as session:
        assert session.get(Organization, umbrella_id).entra_tenant_id is None
        acme = session.scalar(select(Organization).where(Organization.name == "Acme"))
        assert acme.entra_tenant_id == tenant
    assert client.post("/admin/tenant", data={"csrf": csrf, "tenant": ""}).status_code == 303
