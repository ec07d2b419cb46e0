"""The admin page, /admin: people and roles, API keys, sign-in domains, templates, mail.

For the organization's admins, signed in as /account is (Google or Microsoft), or through a
one-time link that `connector admin-link --email` prints for servers with neither. Anyone
else signed in gets 403; someone not signed in is sent to sign in and brought back. Every
form carries the session's CSRF token.
"""

from __future__ import annotations

import io
import re
import secrets
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    Flask,
    current_app,
    g,
    redirect,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select
from werkzeug.utils import secure_filename

from connector.addresses import normalize_domain, normalize_email
from connector.admin_links import MAX_AGE_SECONDS, read_admin_link
from connector.audit import service as audit
from connector.db import get_session
from connector.email_templates import service as templates
from connector.email_templates.models import EmailTemplate
from connector.errors import ServiceError
from connector.gateway import operations as mail_operations
from connector.jobs import get_jobs
from connector.jobs.tasks import REJECTS_FILE, import_folder, read_progress, write_progress
from connector.mail import aliases as mail
from connector.mail.models import Accept, Alias, Creates, InboundMessage, InboundStatus
from connector.mail.numbers import record_number
from connector.orgs import service as orgs
from connector.orgs.context import Ctx
from connector.orgs.models import ApiKey, Organization, Role, SignInDomain, User
from connector.records.models import RecordType
from connector.records.refs import RecordRef
from connector.records.service import contact_for_email, get_record
from connector.store import get_store
from connector.transfer import exporting
from connector.transfer.headers import KINDS
from connector.web.record_links import record_link
from connector.web.security import PAGE_POLICY, error_page
from connector.web.signin import check_csrf, csrf_token, signed_in_user

bp = Blueprint("admin", __name__)

# The audit log's newest events on the page (`connector audit` prints them all).
AUDIT_SHOWN = 100
# Held messages and the latest inbound ones on the page (`connector mail held` lists all).
HELD_SHOWN = 50
INBOUND_SHOWN = 25
# The records whose page a link opens: a task ("task", which is no RecordType, as an alias
# that creates tasks stores it) has no page of its own.
LINKED_TYPES = frozenset(t.value for t in RecordType)

# Who may come in ------------------------------------------------------------------------


def _admin() -> User | ResponseReturnValue:
    """The signed-in admin, or the answer for anyone else."""
    user = signed_in_user()
    if user is None:
        return redirect(url_for("accounts.connect", next=request.full_path.rstrip("?")))
    if user.role != Role.ADMIN:
        return error_page(
            403, "Forbidden", "Only the organization's admins can open the admin page."
        )
    return user


def _ctx(user: User) -> Ctx:
    return Ctx(
        get_session(), user, get_store(current_app), current_app.extensions["connector.settings"]
    )


def _page(page_name: str, status: int = 200, /, **values: Any) -> ResponseReturnValue:
    return (
        render_template(page_name, csrf=csrf_token(), **values),
        status,
        {"Cache-Control": "no-store"},
    )


def _posted(handle: Callable[[User], ResponseReturnValue]) -> ResponseReturnValue:
    """A form's POST: an admin with the session's CSRF token, or a refusal."""
    user = _admin()
    if not isinstance(user, User):
        return user
    if not check_csrf():
        return error_page(403, "Forbidden", "This form has expired: reload the page and try again.")
    return handle(user)


def _done(notice: str) -> ResponseReturnValue:
    return redirect(url_for("admin.index", notice=notice), 303)


# The page --------------------------------------------------------------------------------


def _overview(user: User, **extra: Any) -> dict[str, Any]:
    db = get_session()
    org_id = user.organization_id
    people = db.scalars(select(User).where(User.organization_id == org_id).order_by(User.email))
    keys = db.execute(
        select(ApiKey, User)
        .join(User, ApiKey.user_id == User.id)
        .where(User.organization_id == org_id)
        .order_by(ApiKey.revoked_at.is_not(None), ApiKey.id.desc())
    ).all()
    domains = db.scalars(
        select(SignInDomain.domain)
        .where(SignInDomain.organization_id == org_id)
        .order_by(SignInDomain.domain)
    )
    return {
        "user": user,
        "organization": db.get(Organization, org_id),
        "people": list(people),
        "keys": keys,
        "domains": list(domains),
        "templates": templates.list_templates(_ctx(user)),
        "audit": audit.events(db, org_id, limit=AUDIT_SHOWN, newest_first=True),
        **_mail_overview(user),
        "notice": request.args.get("notice", ""),
        **extra,
    }


@bp.get("/admin", strict_slashes=False)
def index() -> ResponseReturnValue:
    user = _admin()
    if not isinstance(user, User):
        return user
    return _page("admin.html", **_overview(user))


@bp.post("/admin/users/<int:user_id>/role")
def set_role(user_id: int) -> ResponseReturnValue:
    def handle(admin: User) -> ResponseReturnValue:
        db = get_session()
        person = db.get(User, user_id)
        if person is None or person.organization_id != admin.organization_id:
            return error_page(404, "Not Found", "There is no such person in your organization.")
        role = request.form.get("role", "")
        if role not in {r.value for r in Role}:
            return _page("admin.html", 400, **_overview(admin, error=f"{role!r} is not a role."))
        if person.role == Role.ADMIN and role != Role.ADMIN and _admin_count(admin) == 1:
            message = "The organization would have no admin left: make someone else admin first."
            return _page("admin.html", 400, **_overview(admin, error=message))
        if orgs.set_role(db, person, Role(role)):
            audit.record(
                db,
                org_id=admin.organization_id,
                actor=admin,
                action="user.role_changed",
                target=f"user:{person.id}",
                detail={"email": person.email, "role": role},
            )
        db.commit()
        return _done(f"{person.email} is now {role}.")

    return _posted(handle)


@bp.post("/admin/users/<int:user_id>/access")
def set_access(user_id: int) -> ResponseReturnValue:
    """Deactivate someone (their keys, tokens, sessions and links stop working at once; their
    records stay), or give the access back."""

    def handle(admin: User) -> ResponseReturnValue:
        db = get_session()
        person = db.get(User, user_id)
        if person is None or person.organization_id != admin.organization_id:
            return error_page(404, "Not Found", "There is no such person in your organization.")
        if person.id == admin.id:
            message = "You cannot deactivate yourself: ask another admin."
            return _page("admin.html", 400, **_overview(admin, error=message))
        deactivate = request.form.get("active") == "0"
        changed = (orgs.deactivate_user if deactivate else orgs.reactivate_user)(db, person)
        if changed:
            audit.record(
                db,
                org_id=admin.organization_id,
                actor=admin,
                action="user.deactivated" if deactivate else "user.reactivated",
                target=f"user:{person.id}",
                detail={"email": person.email},
            )
        db.commit()
        return _done(f"{person.email} is {'deactivated' if deactivate else 'active again'}.")

    return _posted(handle)


def _admin_count(admin: User) -> int:
    return (
        get_session().scalar(
            select(func.count())
            .select_from(User)
            .where(User.organization_id == admin.organization_id, User.role == Role.ADMIN)
        )
        or 0
    )


@bp.post("/admin/keys/<int:key_id>/revoke")
def revoke_key(key_id: int) -> ResponseReturnValue:
    def handle(admin: User) -> ResponseReturnValue:
        db = get_session()
        key = db.get(ApiKey, key_id)
        if key is None or key.user.organization_id != admin.organization_id:
            return error_page(404, "Not Found", "There is no such key in your organization.")
        orgs.revoke_key(db, key)
        audit.record(
            db,
            org_id=admin.organization_id,
            actor=admin,
            action="key.revoked",
            target=f"key:{key.id}",
            detail={"email": key.user.email, "prefix": key.prefix},
        )
        db.commit()
        return _done(f"Key {key.prefix}… of {key.user.email} revoked.")

    return _posted(handle)


@bp.post("/admin/domains")
def domains() -> ResponseReturnValue:
    def handle(admin: User) -> ResponseReturnValue:
        db = get_session()
        org = db.get(Organization, admin.organization_id)
        assert org is not None  # the admin's own
        domain = normalize_domain(request.form.get("domain", "")) or ""
        if not domain or len(domain) > 253:
            return _page("admin.html", 400, **_overview(admin, error="That is not a domain."))
        if request.form.get("remove"):
            removed = orgs.remove_sign_in_domain(db, org, domain)
            db.commit()
            return _done(f"{domain} removed." if removed else f"{domain} was not listed.")
        free_mail = current_app.extensions["connector.settings"].free_mail
        try:
            orgs.allow_sign_in_domain(db, org, domain, free_mail)
        except (orgs.ConflictError, orgs.FreeMailDomainError, ValueError) as exc:
            db.rollback()
            return _page("admin.html", 400, **_overview(admin, error=str(exc)))
        db.commit()
        return _done(f"People at {domain} become members when they first sign in.")

    return _posted(handle)


@bp.post("/admin/tenant")
def tenant() -> ResponseReturnValue:
    """Bind the organization to its Entra tenant (its people reach it with their Outlook
    sign-in), or unbind it with an empty value."""

    def handle(admin: User) -> ResponseReturnValue:
        db = get_session()
        org = db.get(Organization, admin.organization_id)
        assert org is not None  # the admin's own
        given = request.form.get("tenant", "").strip()
        if not given:
            org.entra_tenant_id = None
            db.commit()
            return _done("No Entra tenant is bound any more.")
        try:
            tenant_id = str(uuid.UUID(given))
        except ValueError:
            message = f"{given[:60]!r} is not a tenant ID (a GUID)."
            return _page("admin.html", 400, **_overview(admin, error=message))
        other = orgs.org_for_tenant(db, tenant_id)
        if other is not None and other.id != org.id:
            message = "That tenant is bound to another organization already."
            return _page("admin.html", 409, **_overview(admin, error=message))
        org.entra_tenant_id = tenant_id
        db.commit()
        return _done(f"Entra ID sign-ins from tenant {tenant_id} reach {org.name}.")

    return _posted(handle)


# Mail ------------------------------------------------------------------------------------


def _inbound_rows(user: User, query: Any) -> list[dict[str, Any]]:
    """Inbound messages as the page lists them, with the record each went to (a link to its
    page, signed for this admin as the add-ins' links are)."""
    config = current_app.config
    rows = []
    for message in get_session().scalars(query):
        kind, number = message.record_type, message.record_id
        ref = RecordRef.of(kind, number) if kind in LINKED_TYPES and number else None
        rows.append(
            {
                "id": message.id,
                "received_at": message.received_at,
                "sender": message.sender or message.envelope_from or "(unknown)",
                "subject": message.subject,
                "alias": message.alias.address if message.alias else None,
                "status": str(message.status),
                "outcome": message.outcome or str(message.status),
                "record": (
                    {
                        "label": record_number(ref) or f"{ref.type.value}:{ref.id}",
                        "url": record_link(
                            config["PUBLIC_URL"], config["SECRET_KEY"], user.id, ref
                        ),
                    }
                    if ref
                    else {"label": f"{kind}:{number}", "url": None}
                    if kind and number
                    else None
                ),
            }
        )
    return rows


def _mail_overview(user: User) -> dict[str, Any]:
    db = get_session()
    org_id = user.organization_id
    aliases = db.scalars(
        select(Alias).where(Alias.organization_id == org_id).order_by(Alias.address)
    )
    held = (
        select(InboundMessage)
        .where(
            InboundMessage.organization_id == org_id,
            InboundMessage.status == InboundStatus.HELD,
        )
        .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
        .limit(HELD_SHOWN)
    )
    latest = (
        select(InboundMessage)
        .where(InboundMessage.organization_id == org_id)
        .order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())
        .limit(INBOUND_SHOWN)
    )
    return {
        "aliases": list(aliases),
        "held": _inbound_rows(user, held),
        "inbound": _inbound_rows(user, latest),
        "template_names": {
            template_id: name
            for template_id, name in db.execute(
                select(EmailTemplate.id, EmailTemplate.name).where(
                    EmailTemplate.organization_id == org_id
                )
            )
        },
        "creates_choices": [c.value for c in Creates],
        "accept_choices": [a.value for a in Accept],
    }


@bp.post("/admin/mail/domain")
def mail_domain() -> ResponseReturnValue:
    """The domain the organization's aliases are at (its MX, or a forward, brings the mail)."""

    def handle(admin: User) -> ResponseReturnValue:
        db = get_session()
        org = db.get(Organization, admin.organization_id)
        assert org is not None  # the admin's own
        try:
            clean = mail.set_mail_domain(
                db,
                org,
                request.form.get("domain", "")[:300],
                current_app.extensions["connector.settings"].free_mail,
                actor=admin,
            )
        except ServiceError as exc:
            db.rollback()
            return _page("admin.html", exc.status_code, **_overview(admin, error=exc.message))
        db.commit()
        return _done(f"The mail domain is {clean}.")

    return _posted(handle)


@bp.post("/admin/mail/aliases")
def create_alias() -> ResponseReturnValue:
    """A team address: what mail to it opens, whose it takes, who owns what it opens, and
    whether (and with which template) it acknowledges the sender."""

    def handle(admin: User) -> ResponseReturnValue:
        db = get_session()
        ctx = _ctx(admin)
        org = db.get(Organization, admin.organization_id)
        assert org is not None  # the admin's own
        form = request.form
        try:
            owner = None
            if form.get("owner"):
                owner = orgs.find_user(db, form["owner"])
                if owner is None or owner.organization_id != org.id:
                    raise ValueError(f"{form['owner'][:100]} is no one in {org.name}.")
            # "" no acknowledgment, "builtin" the plain one, else a template's id.
            reply = form.get("auto_reply", "")
            template = None
            if reply not in ("", "builtin"):
                if not reply.isdecimal() or len(reply) > 9:
                    raise ValueError("Choose a template for the acknowledgment.")
                try:
                    template = templates.get_template(ctx, int(reply))
                except ServiceError as exc:  # deleted since the page was drawn: the form's fault
                    raise ValueError(exc.message) from exc
            alias = mail.create_alias(
                db,
                org,
                address=form.get("address", "")[:320],
                creates=form.get("creates", ""),
                owner=owner,
                accept=form.get("accept", Accept.EVERYONE.value),
                auto_reply=reply != "",
                auto_reply_template=template,
                actor=admin,
            )
        except ServiceError as exc:
            db.rollback()
            return _page("admin.html", exc.status_code, **_overview(admin, error=exc.message))
        except ValueError as exc:
            db.rollback()
            return _page("admin.html", 400, **_overview(admin, error=str(exc)))
        db.commit()
        return _done(f"Mail to {alias.address} now opens a {alias.creates}.")

    return _posted(handle)


@bp.post("/admin/mail/aliases/<int:alias_id>/delete")
def delete_alias(alias_id: int) -> ResponseReturnValue:
    def handle(admin: User) -> ResponseReturnValue:
        db = get_session()
        org = db.get(Organization, admin.organization_id)
        assert org is not None  # the admin's own
        try:
            alias = mail.get_alias(db, org, alias_id)
        except ServiceError as exc:
            return error_page(exc.status_code, "Not Found", exc.message)
        address = alias.address
        mail.delete_alias(db, alias, actor=admin)
        db.commit()
        return _done(f"{address} deleted: mail to it is refused from now on.")

    return _posted(handle)


@bp.post("/admin/mail/held/<int:message_id>/release")
def release_held(message_id: int) -> ResponseReturnValue:
    """Let a held message through: routed again as if it had just come in."""

    def handle(admin: User) -> ResponseReturnValue:
        db = get_session()
        message = db.get(InboundMessage, message_id)
        if message is None or message.organization_id != admin.organization_id:
            return error_page(404, "Not Found", "There is no such message in your organization.")
        if message.status != InboundStatus.HELD:
            return _done("That message is not held any more.")
        mail_operations.release_held(db, [message.id], admin, org_id=admin.organization_id)
        # Committed before it is queued, so that the job finds it received.
        db.commit()
        get_jobs(current_app).enqueue("route_inbound", inbound_id=message.id)
        return _done(f"Released the message from {message.sender or 'the sender'}.")

    return _posted(handle)


# Templates -------------------------------------------------------------------------------


def _preview_ref(ctx: Ctx, text: str) -> RecordRef | None:
    """The record a preview is for: a contact's address, or "lead:3"; None for none."""
    text = text.strip()
    if not text:
        return None
    address = normalize_email(text)
    if address is not None:
        contact = contact_for_email(ctx.session, ctx.org_id, address)
        if contact is None:
            raise ValueError(f"No contact has the address {address}.")
        return RecordRef.of("contact", contact.id)
    try:
        ref = RecordRef.parse(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither an address nor a record like lead:3.") from None
    get_record(ctx.session, ctx.org_id, ref)
    return ref


def _template_form(
    admin: User, template: EmailTemplate | None, status: int = 200, **values: Any
) -> ResponseReturnValue:
    form = {
        "name": template.name if template else "",
        "subject": template.subject if template else "",
        "body_html": template.body_html if template else "",
        "preview_for": "",
        **{k: v for k, v in request.form.items() if k != "csrf"},
    }
    g.connector_page_policy = TEMPLATE_PAGE_POLICY
    return _page("admin_template.html", status, user=admin, template=template, form=form, **values)


# The template page's one script (static/admin_template.js) asks for previews as you type.
TEMPLATE_PAGE_POLICY = f"{PAGE_POLICY}; script-src 'self'; connect-src 'self'"


@bp.post("/admin/templates/preview")
def live_preview() -> ResponseReturnValue:
    """The template being written, rendered for the chosen record, as JSON: what the page's
    script shows as you type (subject and text; the Preview button shows the HTML)."""
    user = _admin()
    if not isinstance(user, User):
        return {"error": "Sign in again as an admin."}, 403
    if not check_csrf():
        return {"error": "This form has expired: reload the page."}, 403
    ctx = _ctx(user)
    try:
        ref = _preview_ref(ctx, request.form.get("preview_for", ""))
        rendered = templates.preview_template(
            ctx,
            subject=request.form.get("subject", ""),
            body_html=request.form.get("body_html", ""),
            ref=ref,
        )
    except ServiceError as exc:
        return {"error": exc.message}, 200
    except ValueError as exc:
        return {"error": str(exc)}, 200
    return {"subject": rendered["subject"], "text": rendered["body_text"]}, 200


@bp.get("/admin/templates/new")
def new_template() -> ResponseReturnValue:
    user = _admin()
    if not isinstance(user, User):
        return user
    return _template_form(user, None)


@bp.get("/admin/templates/<int:template_id>")
def edit_template(template_id: int) -> ResponseReturnValue:
    user = _admin()
    if not isinstance(user, User):
        return user
    try:
        template = templates.get_template(_ctx(user), template_id)
    except ServiceError as exc:
        return error_page(exc.status_code, "Not Found", exc.message)
    return _template_form(user, template)


def _save_template(admin: User, template_id: int | None) -> ResponseReturnValue:
    ctx = _ctx(admin)
    template = None
    try:
        template = templates.get_template(ctx, template_id) if template_id else None
        fields = {
            "name": request.form.get("name", "").strip(),
            "subject": request.form.get("subject", ""),
            "body_html": request.form.get("body_html", ""),
        }
        if not fields["name"] or not fields["subject"].strip() or not fields["body_html"].strip():
            return _template_form(admin, template, 400, error="Give a name, a subject and a body.")
        if request.form.get("action") == "preview":
            ref = _preview_ref(ctx, request.form.get("preview_for", ""))
            rendered = templates.preview_template(
                ctx, subject=fields["subject"], body_html=fields["body_html"], ref=ref
            )
            return _template_form(admin, template, preview=rendered)
        if template is None:
            templates.create_template(ctx, **fields)
        else:
            templates.update_template(ctx, template.id, **fields)
    except ServiceError as exc:
        ctx.session.rollback()
        return _template_form(admin, template, exc.status_code, error=exc.message)
    except ValueError as exc:
        return _template_form(admin, template, 400, error=str(exc))
    ctx.session.commit()
    return _done(f"Template {fields['name']!r} saved.")


@bp.post("/admin/templates")
def create_template() -> ResponseReturnValue:
    return _posted(lambda admin: _save_template(admin, None))


@bp.post("/admin/templates/<int:template_id>")
def update_template(template_id: int) -> ResponseReturnValue:
    return _posted(lambda admin: _save_template(admin, template_id))


@bp.post("/admin/templates/<int:template_id>/delete")
def delete_template(template_id: int) -> ResponseReturnValue:
    def handle(admin: User) -> ResponseReturnValue:
        ctx = _ctx(admin)
        try:
            name = templates.get_template(ctx, template_id).name
            templates.delete_template(ctx, template_id)
        except ServiceError as exc:
            return error_page(exc.status_code, "Not Found", exc.message)
        ctx.session.commit()
        return _done(f"Template {name!r} deleted.")

    return _posted(handle)


# Import and export -----------------------------------------------------------------------

RUN_ID = re.compile(r"^[0-9a-f]{16}$")
# While an import runs, its page reloads itself this often (seconds): no script needed.
PROGRESS_REFRESH_SECONDS = 2


@bp.post("/admin/import")
def start_import() -> ResponseReturnValue:
    """Save the uploaded file and queue its import; the run's page shows its progress."""

    def handle(admin: User) -> ResponseReturnValue:
        kind = request.form.get("kind", "")
        upload = request.files.get("file")
        if kind not in KINDS:
            return _page("admin.html", 400, **_overview(admin, error="Choose what to import."))
        if upload is None or not upload.filename:
            return _page("admin.html", 400, **_overview(admin, error="Choose a file to import."))
        run_id = secrets.token_hex(8)
        folder = import_folder(current_app, run_id)
        folder.mkdir(parents=True)
        file_name = secure_filename(upload.filename) or "import.csv"
        upload.save(folder / file_name)
        state = {"kind": kind, "file": file_name, "rows": 0, "done": False}
        write_progress(folder, {**state, "organization_id": admin.organization_id})
        get_jobs(current_app).enqueue(
            "import_upload", run_id=run_id, file_name=file_name, kind=kind, user_id=admin.id
        )
        return redirect(url_for("admin.import_run", run_id=run_id), 303)

    return _posted(handle)


def _run(admin: User, run_id: str) -> tuple[Path, dict[str, Any]] | None:
    """An import of the admin's organization, by its id, and its state; None for none."""
    if RUN_ID.match(run_id) is None:
        return None
    folder = import_folder(current_app, run_id)
    state = read_progress(folder)
    if state is None:
        return None
    return (folder, state) if state.get("organization_id") == admin.organization_id else None


@bp.get("/admin/imports/<run_id>")
def import_run(run_id: str) -> ResponseReturnValue:
    user = _admin()
    if not isinstance(user, User):
        return user
    run = _run(user, run_id)
    if run is None:
        return error_page(404, "Not Found", "There is no such import.")
    folder, state = run
    page = render_template(
        "admin_import.html",
        csrf=csrf_token(),
        user=user,
        run_id=run_id,
        state=state,
        rejects=(folder / REJECTS_FILE).exists(),
    )
    headers = {"Cache-Control": "no-store"}
    if not state.get("done"):
        headers["Refresh"] = str(PROGRESS_REFRESH_SECONDS)
    return page, 200, headers


@bp.get("/admin/imports/<run_id>/rejected.csv")
def import_rejects(run_id: str) -> ResponseReturnValue:
    user = _admin()
    if not isinstance(user, User):
        return user
    run = _run(user, run_id)
    if run is None or not (run[0] / REJECTS_FILE).exists():
        return error_page(404, "Not Found", "This import rejected no rows.")
    return send_file(
        run[0] / REJECTS_FILE,
        mimetype="text/csv",
        as_attachment=True,
        download_name=f"{run[1].get('file', 'import')}.rejected.csv",
    )


@bp.get("/admin/export")
def export() -> ResponseReturnValue:
    """A download of the organization's records, written to a temporary file first (constant
    memory, whatever the size), as `connector export` writes them."""
    user = _admin()
    if not isinstance(user, User):
        return user
    kind, fmt = request.args.get("kind", ""), request.args.get("format", "csv")
    if kind not in exporting.KINDS or fmt not in exporting.FORMATS:
        return error_page(400, "Bad Request", "Choose what to export, as CSV or JSON lines.")
    db = get_session()
    # send_file closes it once the answer is sent: no `with` here.
    spooled = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115
    text = io.TextIOWrapper(spooled, encoding="utf-8", newline="")
    count = exporting.write(db, user.organization_id, kind, fmt, text)
    text.flush()
    text.detach()
    spooled.seek(0)
    audit.record(
        db,
        org_id=user.organization_id,
        actor=user,
        action="records.exported",
        target=kind,
        detail={"kind": kind, "format": fmt, "count": count},
    )
    db.commit()
    extension = "csv" if fmt == "csv" else "jsonl"
    return send_file(
        spooled,
        mimetype="text/csv" if fmt == "csv" else "application/x-ndjson",
        as_attachment=True,
        download_name=f"{kind}.{extension}",
    )


# One-time sign-in links ------------------------------------------------------------------


@bp.get("/admin/sign-in")
def link_sign_in() -> ResponseReturnValue:
    invalid = "This sign-in link is not valid any more: print a new one with connector admin-link."
    read = read_admin_link(current_app.config["SECRET_KEY"], request.args.get("t", ""))
    if read is None:
        return error_page(403, "Forbidden", invalid)
    user_id, nonce = read
    store = get_store(current_app)
    used = f"admin-link-used:{nonce}"
    # Once: the first use marks it (kept as long as the link could be valid).
    if store.get(used) is not None:
        return error_page(403, "Forbidden", invalid)
    store.set(used, b"1", MAX_AGE_SECONDS)
    user = get_session().get(User, user_id)
    if user is None or user.role != Role.ADMIN:
        return error_page(403, "Forbidden", invalid)
    session["user_id"] = user.id
    return redirect(url_for("admin.index"), 303)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
