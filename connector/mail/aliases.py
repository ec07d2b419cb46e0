"""Organization mail domains and their aliases: the admin side (CLI, API, admin page)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.addresses import FreeMailDomains, domain_of, normalize_domain, normalize_email
from connector.audit import service as audit
from connector.email_templates.models import EmailTemplate
from connector.errors import Conflict, InvalidInput, NotFound
from connector.mail.models import Accept, Alias, Creates
from connector.orgs.models import Organization, User

# Who made a change, for the audit log: a user (the admin page, the API), "cli:<login>" (the
# commands), or None for what is not a person's doing (the demo data) and goes unrecorded.
Actor = User | str | None


def _audit(
    session: Session, actor: Actor, org_id: int, action: str, target: str, detail: dict[str, Any]
) -> None:
    if actor is not None:
        audit.record(
            session, org_id=org_id, actor=actor, action=action, target=target, detail=detail
        )


def set_mail_domain(
    session: Session,
    org: Organization,
    domain: str,
    free_mail: FreeMailDomains,
    actor: Actor = None,
) -> str:
    """Give the organization its mail domain (audited); the domain as stored."""
    clean = normalize_domain(domain)
    if clean is None:
        raise InvalidInput(f"{domain!r} is not a domain.", {"domain": ["not a domain"]})
    if clean in free_mail:
        raise InvalidInput(
            f"{clean} is a free-mail domain: a team's mail domain must be its own.",
            {"domain": ["free-mail domain"]},
        )
    holder = session.scalar(select(Organization).where(Organization.mail_domain == clean))
    if holder is not None and holder.id != org.id:
        raise Conflict(f"{clean} is the mail domain of {holder.name}.")
    stale = [a.address for a in list_aliases(session, org) if domain_of(a.address) != clean]
    if stale:
        raise Conflict(
            f"Delete the aliases of the old domain first: {', '.join(stale)}.",
        )
    before = org.mail_domain
    org.mail_domain = clean
    session.flush()
    _audit(
        session,
        actor,
        org.id,
        "mail_domain.set",
        f"org:{org.id}",
        {"domain": clean, "before": before},
    )
    return clean


def org_for_mail_domain(session: Session, domain: str) -> Organization | None:
    return session.scalar(
        select(Organization).where(Organization.mail_domain == domain.strip().lower())
    )


def create_alias(
    session: Session,
    org: Organization,
    *,
    address: str,
    creates: Creates | str,
    owner: User | None = None,
    accept: Accept | str = Accept.EVERYONE,
    auto_reply: bool = False,
    auto_reply_template: EmailTemplate | None = None,
    actor: Actor = None,
) -> Alias:
    """A team address of the organization's mail domain (audited); InvalidInput or Conflict
    otherwise."""
    clean = normalize_email(address)
    if clean is None:
        raise InvalidInput(f"{address!r} is not an email address.", {"address": ["not an address"]})
    if org.mail_domain is None:
        raise InvalidInput(
            f"{org.name} has no mail domain yet: set it first "
            "(connector orgs mail-domain --org NAME --domain D).",
            {"address": ["no mail domain"]},
        )
    if domain_of(clean) != org.mail_domain:
        raise InvalidInput(
            f"{clean} is not at {org.mail_domain}, the organization's mail domain.",
            {"address": [f"not at {org.mail_domain}"]},
        )
    if not clean.isascii():
        # What we send from it would need SMTPUTF8 at every server on the way, and many
        # refuse it: a team address is plain ASCII.
        raise InvalidInput(
            f"{clean} has letters beyond ASCII: a team address must be plain ASCII.",
            {"address": ["not ASCII"]},
        )
    if "+" in clean.partition("@")[0]:
        raise InvalidInput(
            "An alias has no '+' in it: those addresses are the records' reply addresses.",
            {"address": ["has a '+'"]},
        )
    try:
        creates, accept = Creates(creates), Accept(accept)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    if owner is not None and owner.organization_id != org.id:
        raise InvalidInput(f"{owner.email} is not in {org.name}.", {"owner": ["not a member"]})
    if auto_reply_template is not None and auto_reply_template.organization_id != org.id:
        raise InvalidInput("That template is not the organization's.", {"template": ["unknown"]})
    if session.scalar(select(Alias).where(Alias.address == clean)) is not None:
        raise Conflict(f"{clean} is an alias already.")
    alias = Alias(
        organization_id=org.id,
        address=clean,
        creates=creates,
        owner_id=owner.id if owner else None,
        accept=accept,
        auto_reply=auto_reply or auto_reply_template is not None,
        auto_reply_template_id=auto_reply_template.id if auto_reply_template else None,
    )
    session.add(alias)
    session.flush()
    _audit(
        session,
        actor,
        org.id,
        "alias.created",
        f"alias:{alias.id}",
        {
            "address": alias.address,
            "creates": str(alias.creates),
            "accept": str(alias.accept),
            "auto_reply": alias.auto_reply,
            "template": auto_reply_template.name if auto_reply_template else None,
        },
    )
    return alias


def list_aliases(session: Session, org: Organization | None = None) -> list[Alias]:
    query = select(Alias).order_by(Alias.organization_id, Alias.address)
    if org is not None:
        query = query.where(Alias.organization_id == org.id)
    return list(session.scalars(query))


def alias_for_address(session: Session, address: str) -> Alias | None:
    """The alias of exactly this address (any case), in whichever organization has it."""
    clean = normalize_email(address)
    if clean is None:
        return None
    return session.scalar(select(Alias).where(Alias.address == clean))


def get_alias(session: Session, org: Organization, alias_id: int) -> Alias:
    alias = session.get(Alias, alias_id)
    if alias is None or alias.organization_id != org.id:
        raise NotFound(f"There is no alias with id {alias_id}.")
    return alias


def delete_alias(session: Session, alias: Alias, actor: Actor = None) -> None:
    """Mail to it is refused from now on; what came through it stays on its records."""
    _audit(
        session,
        actor,
        alias.organization_id,
        "alias.deleted",
        f"alias:{alias.id}",
        {"address": alias.address},
    )
    session.delete(alias)
    session.flush()
