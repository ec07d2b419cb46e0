"""Organizations, users and API keys."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from sqlalchemy import func, select
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
    return new_key(session, user, label)[1]


def new_key(session: Session, user: User, label: str = "") -> tuple[ApiKey, str]:
    """As issue_key, with the key's row (its id names it in `keys list` and the audit log)."""
    raw_key = KEY_PREFIX + secrets.token_urlsafe(32)
    return store_key(session, user, raw_key, label), raw_key


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
    # A deactivated user's keys stay as they were (reactivating brings them back), unused.
    if key is None or not key.user.active:
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


# Administration: who has access, and taking it away ------------------------------------


def list_orgs(session: Session) -> list[Organization]:
    return list(session.scalars(select(Organization).order_by(Organization.name)))


def list_users(session: Session, org: Organization | None = None) -> list[User]:
    """The users of one organization, or of all, by organization then address."""
    query = select(User).join(User.organization).order_by(Organization.name, User.email)
    if org is not None:
        query = query.where(User.organization_id == org.id)
    return list(session.scalars(query))


def last_key_use(session: Session, user_ids: list[int]) -> dict[int, dt.datetime]:
    """When each user last used any of their API keys (to the minute), for those who have."""
    if not user_ids:
        return {}
    rows = session.execute(
        select(ApiKey.user_id, func.max(ApiKey.last_used_at))
        .where(ApiKey.user_id.in_(user_ids), ApiKey.last_used_at.is_not(None))
        .group_by(ApiKey.user_id)
    )
    return {user_id: last for user_id, last in rows if last is not None}


def list_keys(session: Session, user: User | None = None) -> list[ApiKey]:
    """API keys (never their secret: only its hash is kept), of one user or of everyone."""
    query = select(ApiKey).order_by(ApiKey.id)
    if user is not None:
        query = query.where(ApiKey.user_id == user.id)
    return list(session.scalars(query))


def get_key(session: Session, key_id: int) -> ApiKey | None:
    return session.get(ApiKey, key_id)


def deactivate_user(session: Session, user: User) -> bool:
    """Take the user's access away at once: keys, Entra tokens, add-on requests, browser
    sessions and record links are refused from the next request on. Their records, and
    what they did, stay. False when they were deactivated already."""
    if user.deactivated_at is not None:
        return False
    user.deactivated_at = utcnow()
    session.flush()
    return True


def reactivate_user(session: Session, user: User) -> bool:
    """Give the access back: keys that were not revoked work again. False when active."""
    if user.deactivated_at is None:
        return False
    user.deactivated_at = None
    session.flush()
    return True


def set_role(session: Session, user: User, role: Role) -> bool:
    """False when the user had that role already."""
    if user.role == role:
        return False
    user.role = role
    session.flush()
    return True


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
