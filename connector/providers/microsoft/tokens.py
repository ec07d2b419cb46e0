"""msal for the connector: one client per request, each user's token cache in shared state.

A user's cache holds refresh tokens, so it is stored encrypted, like the refresh
token kept in the database. Every worker reads and writes the same cache, so an
access token fetched by one is reused by the others until it expires.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import msal
from msal.exceptions import MsalError
from requests import RequestException
from sqlalchemy.orm import Session

from connector.accounts.crypto import DecryptionError, TokenCipher
from connector.accounts.models import LinkedAccount, Provider
from connector.accounts.service import linked_account, msal_cache_key, stored_refresh_token
from connector.mailbox import ConsentRequired
from connector.orgs.models import User
from connector.store import SharedStore, StoreUnavailable

# Graph's delegated permissions to reply as the user: createReply and updating the
# draft need Mail.ReadWrite, sending it Mail.Send. Entra reports granted Graph scopes
# either bare or as full URLs, so both spellings count.
REPLY_SCOPES = ("Mail.ReadWrite", "Mail.Send")
_GRAPH_RESOURCE = "https://graph.microsoft.com/"
CACHE_SECONDS = 90 * 24 * 3600
# What Entra answers when only the user can fix it, by signing in (and consenting) again.
# Anything else (invalid_client, temporarily_unavailable, server_error) is ours or Entra's.
log = logging.getLogger(__name__)

_SIGN_IN_AGAIN = {"invalid_grant", "interaction_required", "consent_required", "login_required"}


class MicrosoftUnavailable(Exception):
    """The identity provider could not be reached or answered nonsense."""


@dataclass(frozen=True)
class MicrosoftClient:
    client_id: str
    client_secret: str
    authority: str

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MicrosoftClient:
        return cls(config["MS_CLIENT_ID"], config["MS_CLIENT_SECRET"], config["MS_AUTHORITY"])


def load_cache(
    store: SharedStore, cipher: TokenCipher, user_id: int
) -> msal.SerializableTokenCache:
    cache = msal.SerializableTokenCache()
    try:
        saved = store.get(msal_cache_key(user_id))
    except StoreUnavailable as exc:
        # The cache only saves token requests: the stored refresh token still works.
        log.warning("msal's token cache is unavailable, redeeming the refresh token: %s", exc)
        return cache
    # Written under another key: start afresh; the stored refresh token still works.
    if saved is not None:
        with contextlib.suppress(DecryptionError):
            cache.deserialize(cipher.decrypt(saved))
    return cache


def save_cache(
    store: SharedStore, cipher: TokenCipher, user_id: int, cache: msal.SerializableTokenCache
) -> None:
    if cache.has_state_changed:
        # Kept as long as an unused refresh token lives (90 days), then forgotten; the
        # refresh token in the database still serves after that.
        try:
            store.set(
                msal_cache_key(user_id),
                cipher.encrypt(cache.serialize()),
                expires_in=CACHE_SECONDS,
            )
        except StoreUnavailable as exc:
            log.warning("msal's token cache could not be saved: %s", exc)


def msal_app(
    client: MicrosoftClient, cache: msal.SerializableTokenCache | None = None
) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        client.client_id,
        client_credential=client.client_secret,
        authority=client.authority,
        token_cache=cache or msal.SerializableTokenCache(),
        # The authority is configurable (tests run a local one); nothing to discover.
        validate_authority=False,
        instance_discovery=False,
    )


def has_scope(granted: list[str] | None, scope: str) -> bool:
    wanted = scope.lower()
    return any(s.lower() in (wanted, _GRAPH_RESOURCE + wanted) for s in granted or [])


def graph_token(
    session: Session,
    store: SharedStore,
    cipher: TokenCipher,
    client: MicrosoftClient,
    user: User,
    scopes: Sequence[str] = REPLY_SCOPES,
) -> str:
    """An access token for Graph with `scopes`, from msal's cache or the stored refresh token.

    Raises ConsentRequired when the user never granted them, or revoked them, or the
    refresh token expired; MicrosoftUnavailable when Entra cannot be reached or fails.
    """
    account = linked_account(session, user, Provider.MICROSOFT)
    if account is None:
        raise ConsentRequired("no Microsoft account linked")
    missing = [s for s in scopes if not has_scope(account.scopes, s)]
    if missing:
        raise ConsentRequired(f"no consent for {', '.join(missing)}")
    cache = load_cache(store, cipher, user.id)
    app = msal_app(client, cache)
    try:
        result = None
        # The cache is this user's alone, so any account in it is theirs.
        for cached in app.get_accounts():
            result = app.acquire_token_silent(list(scopes), account=cached)
            if result:
                break
        if not result or "access_token" not in result:
            result = _redeem_refresh_token(app, cipher, account, list(scopes))
    except (RequestException, ValueError, MsalError) as exc:
        raise MicrosoftUnavailable(str(exc)) from exc
    if "access_token" not in result:
        reason = f"{result.get('error')}: {result.get('error_description')}"
        if result.get("error") in _SIGN_IN_AGAIN:
            # Revoked, expired, not consented, or the password changed.
            raise ConsentRequired(reason)
        raise MicrosoftUnavailable(reason)
    refresh_token = result.get("refresh_token")
    if refresh_token:
        # Entra rotates refresh tokens; keep the newest one in the database too.
        account.refresh_token_encrypted = cipher.encrypt(refresh_token)
    save_cache(store, cipher, user.id, cache)
    return str(result["access_token"])


def _redeem_refresh_token(
    app: msal.ConfidentialClientApplication,
    cipher: TokenCipher,
    account: LinkedAccount,
    scopes: list[str],
) -> dict[str, Any]:
    refresh_token = stored_refresh_token(cipher, account)
    if refresh_token is None:
        raise ConsentRequired("no readable refresh token")
    # msal ships no types; it answers with the token endpoint's JSON object.
    return cast(dict[str, Any], app.acquire_token_by_refresh_token(refresh_token, scopes=scopes))
