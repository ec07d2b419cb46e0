"""Email templates: placeholders such as {{ contact.name }}, rendered in Jinja's sandbox.

A template sees only plain dictionaries of a few fields, never a model or a
function, and the sandbox refuses attribute tricks; values are HTML-escaped in
the body. So a template can show a record's fields and nothing else.
"""

from __future__ import annotations

import functools
from typing import Any

from jinja2 import Template
from jinja2.exceptions import SecurityError
from sqlalchemy import select

from connector.activities.html_text import html_to_text, sanitize_html
from connector.email_templates.models import EmailTemplate
from connector.email_templates.sandbox import (
    BoundedEnvironment,
    TemplateLimitExceeded,
    render_bounded,
    render_budget,
)
from connector.errors import Conflict, InvalidInput, NotFound, ServiceError
from connector.orgs.context import Ctx
from connector.records.models import Company, Contact, RecordType
from connector.records.refs import RecordRef
from connector.records.service import get_record, live


@functools.cache
def _environment(autoescape: bool) -> BoundedEnvironment:
    # One per setting, shared by all threads: a render's budget lives in a context variable.
    return BoundedEnvironment(autoescape=autoescape)


def _first_name(name: str) -> str:
    return name.split()[0] if name.split() else ""


def _contact_vars(contact: Contact | None) -> dict[str, Any]:
    if contact is None:
        return {}
    return {
        "name": contact.name,
        "first_name": _first_name(contact.name),
        "email": contact.emails[0].email if contact.emails else "",
        "phone": contact.phone or "",
        "job_title": contact.job_title or "",
    }


def _company_vars(company: Company | None) -> dict[str, Any]:
    if company is None:
        return {}
    return {"name": company.name, "website": company.website or "", "phone": company.phone or ""}


def template_variables(ctx: Ctx, ref: RecordRef | None) -> dict[str, dict[str, Any]]:
    """What placeholders can name: contact, company, lead, ticket and user, as plain values."""
    variables: dict[str, dict[str, Any]] = {
        "user": {
            "name": ctx.user.name,
            "first_name": _first_name(ctx.user.name),
            "email": ctx.user.email,
        },
        "contact": {},
        "company": {},
        "lead": {},
        "ticket": {},
    }
    if ref is None:
        return variables
    record = get_record(ctx.session, ctx.org_id, ref)
    if ref.type is RecordType.CONTACT:
        contact, company = record, live(record.company)
    elif ref.type is RecordType.COMPANY:
        contact, company = None, record
    else:
        contact = live(record.contact)
        company = live(record.company) or (live(contact.company) if contact else None)
    if ref.type is RecordType.LEAD:
        variables["lead"] = {
            "title": record.title,
            "stage": str(record.stage),
            "expected_revenue": record.expected_revenue,
        }
    if ref.type is RecordType.TICKET:
        variables["ticket"] = {
            "id": record.id,
            "subject": record.subject,
            "status": str(record.status),
        }
    variables["contact"] = _contact_vars(contact)
    variables["company"] = _company_vars(company)
    return variables


# A template is the admin's code, so whatever it raises while it compiles or renders is their
# template's error, not ours: int('9' * 5000), 1 / 0, {{ 1|dictsort }} (AttributeError), a
# source nested too deep for Python's compiler (SyntaxError) or for the parser
# (RecursionError). TemplateLimitExceeded, a TemplateError, is caught before these.
_TEMPLATE_FAULTS = (Exception,)


@functools.lru_cache(maxsize=256)
def _compiled(source: str, autoescape: bool) -> Template:
    # Compiling costs far more than rendering; a compiled template holds no state of a
    # render (its budget is a context variable), so threads share it.
    return _environment(autoescape).from_string(source)


def _compile(source: str, autoescape: bool, field: str, parse_only: bool = False) -> Any:
    try:
        if parse_only:
            return _environment(autoescape).parse(source)
        return _compiled(source, autoescape)
    except TemplateLimitExceeded as exc:
        raise InvalidInput(f"The {field} is refused: {exc}", {field: [str(exc)]}) from exc
    except _TEMPLATE_FAULTS as exc:
        raise InvalidInput(
            f"The {field} is not a valid template: {exc}", {field: [str(exc)]}
        ) from exc


def _render(template: Template, field: str, variables: dict[str, Any]) -> str:
    """Render inside the caller's render_budget; a bound or an error is a 400 that says which."""
    try:
        return render_bounded(template, variables)
    except TemplateLimitExceeded as exc:
        raise InvalidInput(
            f"The {field} could not be rendered: {exc}", {field: [str(exc)]}
        ) from exc
    except _TEMPLATE_FAULTS as exc:
        # The sandbox's SecurityError is a TemplateError: a template that tries
        # to reach outside its data fails to render, with a plain message.
        raise InvalidInput(
            f"The {field} could not be rendered: {exc}", {field: [str(exc)]}
        ) from exc


def _sample_variables(ctx: Ctx) -> dict[str, dict[str, Any]]:
    """Values of every kind a template can see, to try a new template on."""
    variables = template_variables(ctx, None)
    variables["contact"] = {
        "name": "Ada Lovelace",
        "first_name": "Ada",
        "email": "ada@example.com",
        "phone": "+44 20 7946 0000",
        "job_title": "Analyst",
    }
    variables["company"] = {
        "name": "Analytical Engines",
        "website": "https://example.com",
        "phone": "+44 20 7946 0001",
    }
    variables["lead"] = {"title": "50 seats", "stage": "new", "expected_revenue": 12000}
    variables["ticket"] = {"id": 1, "subject": "Cannot sign in", "status": "open"}
    return variables


def _check_bounds(ctx: Ctx, subject: str, body_html: str) -> None:
    """Refuse a template that goes past a bound when it renders for a sample record.

    What a template does regardless of its data ('x' * 10**9, loops within loops, reaching
    for what the sandbox keeps out) shows here, at once, rather than at every render. Other
    render errors are left for the render to report: they may well depend on the record.
    """
    variables = _sample_variables(ctx)
    # Compiled before the budget starts: its deadline is the render's.
    templates = {
        "subject": _compile(subject, False, "subject"),
        "body_html": _compile(body_html, True, "body_html"),
    }
    with render_budget():
        for field, template in templates.items():
            try:
                render_bounded(template, variables)
            except (TemplateLimitExceeded, SecurityError) as exc:
                raise InvalidInput(f"The {field} is refused: {exc}", {field: [str(exc)]}) from exc
            except _TEMPLATE_FAULTS:
                continue


def list_templates(ctx: Ctx) -> list[EmailTemplate]:
    query = (
        select(EmailTemplate)
        .where(EmailTemplate.organization_id == ctx.org_id)
        .order_by(EmailTemplate.name)
    )
    return list(ctx.session.scalars(query))


def subject_previews(
    ctx: Ctx, templates: list[EmailTemplate], ref: RecordRef | None
) -> dict[int, str]:
    """Each template's subject as it reads for the record (for no record, its placeholders
    empty), for a picker to show instead of raw `{{ placeholders }}`. A subject that fails
    to render for this record shows the template's name: the picker still lists it, and
    rendering it for real says what is wrong."""
    variables = template_variables(ctx, ref)
    previews: dict[int, str] = {}
    for template in templates:
        try:
            compiled = _compile(template.subject, False, "subject")
            with render_budget():
                subject = _render(compiled, "subject", variables)
        except ServiceError:
            subject = template.name
        previews[template.id] = " ".join(subject.split()) or template.name
    return previews


def get_template(ctx: Ctx, template_id: int) -> EmailTemplate:
    template = ctx.session.get(EmailTemplate, template_id)
    if template is None or template.organization_id != ctx.org_id:
        raise NotFound(f"There is no template with id {template_id}.")
    return template


def _checked(ctx: Ctx, name: str, subject: str, body_html: str, template_id: int | None) -> str:
    """The body as it will be stored, once the template is known to compile, to stay within
    its bounds, and to have a name no other template of the organization has."""
    # As written, for errors that point at what the admin wrote.
    _compile(subject, False, "subject", parse_only=True)
    _compile(body_html, True, "body_html", parse_only=True)
    # Checked as stored, since that is what renders.
    stored_body = sanitize_html(body_html)
    _check_bounds(ctx, subject, stored_body)
    exists = ctx.session.scalar(
        select(EmailTemplate.id).where(
            EmailTemplate.organization_id == ctx.org_id, EmailTemplate.name == name
        )
    )
    if exists is not None and exists != template_id:
        raise Conflict(f"A template named {name!r} exists already.", {"name": [name]})
    return stored_body


def create_template(ctx: Ctx, *, name: str, subject: str, body_html: str) -> EmailTemplate:
    stored_body = _checked(ctx, name, subject, body_html, None)
    template = EmailTemplate(
        organization_id=ctx.org_id, name=name, subject=subject, body_html=stored_body
    )
    ctx.session.add(template)
    ctx.session.flush()
    return template


def update_template(
    ctx: Ctx, template_id: int, *, name: str, subject: str, body_html: str
) -> EmailTemplate:
    template = get_template(ctx, template_id)
    stored_body = _checked(ctx, name, subject, body_html, template.id)
    template.name, template.subject, template.body_html = name, subject, stored_body
    ctx.session.flush()
    return template


def delete_template(ctx: Ctx, template_id: int) -> None:
    ctx.session.delete(get_template(ctx, template_id))
    ctx.session.flush()


def preview_template(
    ctx: Ctx, *, subject: str, body_html: str, ref: RecordRef | None
) -> dict[str, str]:
    """A template as it would render for the record, before it is saved (the admin page's
    preview): the same checks and bounds as saving and rendering."""
    _compile(subject, False, "subject", parse_only=True)
    _compile(body_html, True, "body_html", parse_only=True)
    stored_body = sanitize_html(body_html)
    variables = template_variables(ctx, ref)
    with render_budget():
        rendered_subject = _render(_compile(subject, False, "subject"), "subject", variables)
        rendered_body = _render(_compile(stored_body, True, "body_html"), "body_html", variables)
    rendered_body = sanitize_html(rendered_body)
    return {
        "subject": " ".join(rendered_subject.split()),
        "body_html": rendered_body,
        "body_text": html_to_text(rendered_body),
    }


def render_template(ctx: Ctx, template_id: int, ref: RecordRef | None) -> dict[str, str]:
    template = get_template(ctx, template_id)
    variables = template_variables(ctx, ref)
    compiled_subject = _compile(template.subject, False, "subject")
    compiled_body = _compile(template.body_html, True, "body_html")
    with render_budget():
        subject = _render(compiled_subject, "subject", variables)
        body_html = _render(compiled_body, "body_html", variables)
    body_html = sanitize_html(body_html)
    return {
        "subject": " ".join(subject.split()),
        "body_html": body_html,
        "body_text": html_to_text(body_html),
    }
