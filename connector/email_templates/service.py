"""Email templates: placeholders such as {{ contact.name }}, rendered in Jinja's sandbox.

A template sees only plain dictionaries of a few fields, never a model or a
function, and the sandbox refuses attribute tricks; values are HTML-escaped in
the body. So a template can show a record's fields and nothing else.
"""

from __future__ import annotations

import functools
from typing import Any

from jinja2 import ChainableUndefined, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from sqlalchemy import select

from connector.activities.mime import html_to_text, sanitize_html
from connector.context import Ctx
from connector.email_templates.models import EmailTemplate
from connector.errors import Conflict, InvalidInput, NotFound
from connector.records.models import Company, Contact, RecordType
from connector.records.service import RecordRef, get_record


@functools.cache
def _environment(autoescape: bool) -> ImmutableSandboxedEnvironment:
    # ChainableUndefined: {{ contact.company.name }} is empty, not an error, when
    # the contact has no company.
    return ImmutableSandboxedEnvironment(autoescape=autoescape, undefined=ChainableUndefined)


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
        contact, company = record, record.company
    elif ref.type is RecordType.COMPANY:
        contact, company = None, record
    else:
        contact, company = (
            record.contact,
            record.company or (record.contact.company if record.contact else None),
        )
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


def _compile(source: str, autoescape: bool, field: str) -> Any:
    try:
        return _environment(autoescape).from_string(source)
    except TemplateError as exc:
        raise InvalidInput(
            f"The {field} is not a valid template: {exc}", {field: [str(exc)]}
        ) from exc


def _render(source: str, autoescape: bool, field: str, variables: dict[str, Any]) -> str:
    try:
        return _compile(source, autoescape, field).render(variables)
    except TemplateError as exc:
        # The sandbox's SecurityError is a TemplateError: a template that tries
        # to reach outside its data fails to render, with a plain message.
        raise InvalidInput(
            f"The {field} could not be rendered: {exc}", {field: [str(exc)]}
        ) from exc


def list_templates(ctx: Ctx) -> list[EmailTemplate]:
    query = (
        select(EmailTemplate)
        .where(EmailTemplate.organization_id == ctx.org_id)
        .order_by(EmailTemplate.name)
    )
    return list(ctx.session.scalars(query))


def get_template(ctx: Ctx, template_id: int) -> EmailTemplate:
    template = ctx.session.get(EmailTemplate, template_id)
    if template is None or template.organization_id != ctx.org_id:
        raise NotFound(f"There is no template with id {template_id}.")
    return template


def create_template(ctx: Ctx, *, name: str, subject: str, body_html: str) -> EmailTemplate:
    _compile(subject, False, "subject")
    _compile(body_html, True, "body_html")
    exists = ctx.session.scalar(
        select(EmailTemplate.id).where(
            EmailTemplate.organization_id == ctx.org_id, EmailTemplate.name == name
        )
    )
    if exists is not None:
        raise Conflict(f"A template named {name!r} exists already.", {"name": [name]})
    template = EmailTemplate(
        organization_id=ctx.org_id, name=name, subject=subject, body_html=sanitize_html(body_html)
    )
    ctx.session.add(template)
    ctx.session.flush()
    return template


def render_template(ctx: Ctx, template_id: int, ref: RecordRef | None) -> dict[str, str]:
    template = get_template(ctx, template_id)
    variables = template_variables(ctx, ref)
    subject = _render(template.subject, False, "subject", variables)
    body_html = sanitize_html(_render(template.body_html, True, "body_html", variables))
    return {
        "subject": " ".join(subject.split()),
        "body_html": body_html,
        "body_text": html_to_text(body_html),
    }
