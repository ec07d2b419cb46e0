"""Organizations, users and API keys."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.addresses import FreeMailDomains, domain_of
from connector.orgs.models import ApiKey, Organization, Role, SignInDomain, User
from connector.orm import utcnow

KEY_PREFIX = "ck_"
# How stale a key's last_used_at may be. Writing it on every request would make every read
# a write: a row lock per call on a key the add-in uses in parallel, and on SQLite the one
# writer's lock; "used within the last minute" is all an admin needs to know.
LAST_USED_PRECISION = dt.timedelta(minutes=1)


class ConflictError(ValueError):
    """The record exists already."""


class FreeMailDomainError(ValueError):
    """A free-mail domain cannot admit people to an organization: anyone can have an address."""


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def get_or_create_org(session: Session, name: str) -> Organization:
    org = find_org(session, name)
    if org is None:
        org = Organization(name=name)
        session.add(org)
        session.flush()
    return org


def find_org(session: Session, name: str) -> Organization | None:
    return session.scalar(select(Organization).where(Organization.name == name))


def org_for_tenant(session: Session, tenant_id: str) -> Organization | None:
    return session.scalar(select(Organization).where(Organization.entra_tenant_id == tenant_id))


def find_user(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def create_user(
    session: Session, org: Organization, email: str, name: str, role: Role = Role.MEMBER
) -> User:
    if find_user(session, email) is not None:
        raise ConflictError(f"a user with the address {email} exists already")
    user = User(organization=org, email=email.strip().lower(), name=name, role=role)
    session.add(user)
    session.flush()
    return user


def store_key(session: Session, user: User, raw_key: str, label: str = "") -> ApiKey:
    key = ApiKey(user=user, key_hash=hash_key(raw_key), prefix=raw_key[:10], label=label)
    session.add(key)
    session.flush()
    return key


def issue_key(session: Session, user: User, label: str = "") -> str:
    """A new random key for the user; only its hash is kept, so this is the only time it shows."""
    raw_key = KEY_PREFIX + secrets.token_urlsafe(32)
    store_key(session, user, raw_key, label)
    return raw_key


def derived_key(secret: str, purpose: str) -> str:
    """A key that the same secret always gives again (the demo user's, which `demo` reprints)."""
    digest = hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).hexdigest()
    return f"{KEY_PREFIX}{purpose}_{digest[:40]}"


def authenticate(session: Session, raw_key: str) -> User | None:
    """The user of a valid key, with the key's last_used_at brought up to date (not committed)."""
    if not raw_key.startswith(KEY_PREFIX):
        return None
    key = session.scalar(
        select(ApiKey).where(ApiKey.key_hash == hash_key(raw_key), ApiKey.revoked_at.is_(None))
    )
    if key is None:
        return None
    now = utcnow()
    last_used = key.last_used_at
    # SQLite gives back naive datetimes; they are UTC.
    if last_used is not None and last_used.tzinfo is None:
        last_used = last_used.replace(tzinfo=dt.UTC)
    if last_used is None or now - last_used >= LAST_USED_PRECISION:
        key.last_used_at = now
    return key.user


def revoke_key(session: Session, key: ApiKey) -> None:
    key.revoked_at = utcnow()


def allow_sign_in_domain(
    session: Session, org: Organization, domain: str, free_mail: FreeMailDomains
) -> SignInDomain:
    """Let people of `domain` (as normalize_domain gives it) join `org` on first sign-in.

    Never a free-mail domain: with gmail.com allowed, every Gmail user could join.
    """
    if domain in free_mail:
        raise FreeMailDomainError(
            f"{domain} is a free-mail domain: anyone can have an address there, so it cannot "
            "admit people to an organization (create their users with `connector users create`)"
        )
    existing = session.scalar(select(SignInDomain).where(SignInDomain.domain == domain))
    if existing is not None:
        if existing.organization_id != org.id:
            raise ConflictError(f"{domain} is a sign-in domain of {existing.organization.name}")
        return existing
    allowed = SignInDomain(organization=org, domain=domain)
    session.add(allowed)
    session.flush()
    return allowed


def remove_sign_in_domain(session: Session, org: Organization, domain: str) -> bool:
    existing = session.scalar(
        select(SignInDomain).where(
            SignInDomain.domain == domain,
            SignInDomain.organization_id == org.id,
        )
    )
    if existing is None:
        return False
    session.delete(existing)
    return True


def org_for_sign_in_domain(
    session: Session, email: str, free_mail: FreeMailDomains
) -> Organization | None:
    """The organization that lets people of this address's domain sign up, if any.

    A free-mail domain admits no one, even one stored before allow-domain refused them
    (or made free-mail since, through CONNECTOR_EXTRA_FREE_MAIL_DOMAINS).
    """
    domain = domain_of(email).strip().lower()
    if domain in free_mail:
        return None
    allowed = session.scalar(select(SignInDomain).where(SignInDomain.domain == domain))
    return allowed.organization if allowed else None
