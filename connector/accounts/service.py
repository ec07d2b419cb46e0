"""Linking a signed-in mail account to its connector user, refresh token encrypted."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session

from connector.accounts.crypto import DecryptionError, TokenCipher
from connector.accounts.models import LinkedAccount, Provider
from connector.orgs.models import User
from connector.store import SharedStore

log = logging.getLogger(__name__)
REVOKE_TIMEOUT_SECONDS = 10


def msal_cache_key(user_id: int) -> str:
    """Where msal's token cache for the user lives in shared state."""
    return f"msal-cache:{user_id}"


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


def stored_refresh_token(cipher: TokenCipher, account: LinkedAccount) -> str | None:
    """The account's refresh token in clear; None when there is none, or it cannot be read
    (encrypted under another key)."""
    if account.refresh_token_encrypted is None:
        return None
    try:
        return cipher.decrypt(account.refresh_token_encrypted)
    except DecryptionError:
        return None


def disconnect(
    session: Session,
    store: SharedStore,
    cipher: TokenCipher,
    account: LinkedAccount,
    google_revoke_url: str,
) -> bool:
    """Forget the account and every token of it; for Google, withdraw the grant there too.

    True when the provider was told, False when only the connector forgot: Microsoft
    has no endpoint to withdraw one app's delegated consent, and Google may be
    unreachable. The connector forgets either way.
    """
    told = False
    refresh_token = stored_refresh_token(cipher, account)
    if account.provider == Provider.GOOGLE and refresh_token is not None:
        told = _revoke_at_google(google_revoke_url, refresh_token)
    if account.provider == Provider.MICROSOFT:
        store.delete(msal_cache_key(account.user_id))
    session.delete(account)
    return told


def _revoke_at_google(revoke_url: str, refresh_token: str) -> bool:
    # Revoking the refresh token withdraws the whole grant (and its access tokens).
    try:
        response = requests.post(
            revoke_url, data={"token": refresh_token}, timeout=REVOKE_TIMEOUT_SECONDS
        )
    except requests.RequestException as exc:
        log.warning("Google revoke unreachable: %s", exc)
        return False
    # 400 invalid_token: the grant is gone already (revoked by the user at Google).
    if response.ok or response.status_code == 400:
        return True
    log.warning("Google revoke answered %s", response.status_code)
    return False
