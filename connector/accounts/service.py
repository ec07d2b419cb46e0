"""Linking a signed-in mail account to its connector user, refresh token encrypted."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.accounts.crypto import TokenCipher
from connector.accounts.models import LinkedAccount, Provider
from connector.orgs.models import User


def link_account(
    session: Session,
    cipher: TokenCipher,
    user: User,
    provider: Provider,
    subject: str,
    email: str,
    scopes: Sequence[str],
    refresh_token: str | None,
) -> LinkedAccount:
    """Create or update the link; a new refresh token replaces the old, scopes accumulate."""
    account = session.scalar(
        select(LinkedAccount).where(
            LinkedAccount.provider == provider, LinkedAccount.subject == subject
        )
    )
    if account is None:
        account = LinkedAccount(provider=provider, subject=subject, scopes=[])
        session.add(account)
    account.user_id = user.id
    account.email = email
    account.scopes = sorted(set(account.scopes or []) | set(scopes))
    if refresh_token:
        account.refresh_token_encrypted = cipher.encrypt(refresh_token)
    session.flush()
    return account


def accounts_of(session: Session, user: User) -> list[LinkedAccount]:
    return list(
        session.scalars(
            select(LinkedAccount).where(LinkedAccount.user_id == user.id).order_by(LinkedAccount.id)
        )
    )


def linked_account(session: Session, user: User, provider: Provider) -> LinkedAccount | None:
    """The user's account with the provider; the latest linked, where they linked several."""
    return session.scalar(
        select(LinkedAccount)
        .where(LinkedAccount.user_id == user.id, LinkedAccount.provider == provider)
        .order_by(LinkedAccount.id.desc())
        .limit(1)
    )
