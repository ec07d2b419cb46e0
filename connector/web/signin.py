"""Sign-in and consent: link a Google or Microsoft account to a connector user.

Both run the authorization-code flow with PKCE: Google's through google-auth-oauthlib,
Microsoft's through msal's ConfidentialClientApplication. The flow's state lives in
the shared store, bound to the browser that started it (a random ID in the signed
session cookie), single use, expiring after ten minutes. The ID token's nonce
must match. Whatever goes wrong, the user sees a plain page and nothing is stored.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import msal
from flask import (
    Blueprint,
    Flask,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from google_auth_oauthlib.flow import Flow
from msal.exceptions import MsalError
from oauthlib.oauth2.rfc6749.errors import OAuth2Error
from requests import RequestException
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from connector.accounts import service
from connector.accounts.crypto import TokenCipher
from connector.accounts.models import LinkedAccount, Provider
from connector.addresses import domain_of
from connector.audit import service as audit
from connector.db import get_session
from connector.orgs.models import ApiKey, Organization, User
from connector.orgs.service import (
    ConflictError,
    create_user,
    find_user,
    new_key,
    org_for_sign_in_domain,
)
from connector.orgs.service import revoke_key as revoke
from connector.providers.google.tokens import InvalidToken
from connector.providers.microsoft import tokens as microsoft
from connector.store import get_store
from connector.web.security import office_dialog

log = logging.getLogger(__name__)
bp = Blueprint("accounts", __name__)

STATE_SECONDS = 600
IDENTITY_SCOPES = [
    "openid",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/userinfo.profile",
]
# Mailbox scopes a feature may ask for when it first needs them (incremental consent).
EXTRA_GOOGLE_SCOPES = {"gmail.send": "https://www.googleapis.com/auth/gmail.send"}


def page(
    title: str,
    message: str,
    status: int = 200,
    links: list[tuple[str, str]] | None = None,
    error: bool = False,
) -> ResponseReturnValue:
    body = render_template(
        "page.html", title=title, message=message, links=links or [], error=error
    )
    return body, status, {"Cache-Control": "no-store"}


def refused(message: str, status: int = 400) -> ResponseReturnValue:
    return page(
        "Sign-in did not complete",
        message,
        status,
        [("Try again", url_for("accounts.connect"))],
        error=True,
    )


def _browser_id() -> str:
    if "browser" not in session:
        session["browser"] = secrets.token_urlsafe(24)
    return str(session["browser"])


def _google_flow(scopes: list[str], code_verifier: str | None = None) -> Flow:
    config = current_app.config
    return Flow.from_client_config(
        {
            "web": {
                "client_id": config["GOOGLE_OAUTH_CLIENT_ID"],
                "client_secret": config["GOOGLE_OAUTH_CLIENT_SECRET"],
                "auth_uri": config["GOOGLE_AUTH_URL"],
                "token_uri": config["GOOGLE_TOKEN_URL"],
            }
        },
        scopes=scopes,
        redirect_uri=config["PUBLIC_URL"] + "/auth/google/callback",
        code_verifier=code_verifier,
        autogenerate_code_verifier=code_verifier is None,
    )


def _take_state(state: str) -> dict[str, Any] | None:
    """The flow's saved state, removed as it is read: a state works once."""
    store = get_store(current_app)
    key = f"oauth-state:{state}"
    raw = store.get(key)
    if raw is None:
        return None
    store.delete(key)
    # json.loads is Any; what the start routes stored is a JSON object.
    return cast(dict[str, Any], json.loads(raw))


CLIENTS = ("web", "outlook")


def _client() -> str:
    """Which client started the sign-in (the `client` argument): the web, or Outlook."""
    client = request.args.get("client", "web")
    return client if client in CLIENTS else "web"


# Pages that send someone to sign in and want them back: record pages, the admin page.
RETURN_PATHS = ("/records/", "/admin")


def return_path(value: str | None) -> str | None:
    """Where to go back to after signing in: a record page of this connector, or nowhere.

    Only a local /records/ or /admin path is kept, so that a crafted link cannot send someone who
    just signed in to another site (an open redirect).
    """
    if not value or not value.startswith(RETURN_PATHS) or "\\" in value:
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or "//" in parts.path:
        return None
    return value


def _in_outlook_dialog(client: str | None) -> None:
    """Pages of the Outlook sign-in dialog may be framed by Office (see connector.web.security)."""
    if client == "outlook":
        office_dialog()


@bp.get("/connect")
def connect() -> ResponseReturnValue:
    client = _client()
    _in_outlook_dialog(client)
    return page(
        "Connect your mailbox",
        "Sign in with the account you use for email, so that the connector knows who you are.",
        links=[
            (
                "Sign in with Google",
                # A feature that needs a mailbox scope (sending) asks for it here.
                url_for(
                    "accounts.google_start",
                    client=client,
                    scope=request.args.getlist("scope"),
                    next=return_path(request.args.get("next")),
                ),
            ),
            (
                "Sign in with Microsoft",
                url_for(
                    "accounts.microsoft_start",
                    client=client,
                    scope=request.args.getlist("scope"),
                    next=return_path(request.args.get("next")),
                ),
            ),
        ],
    )


@bp.get("/auth/google/start")
def google_start() -> ResponseReturnValue:
    config = current_app.config
    if not config["GOOGLE_OAUTH_CLIENT_ID"]:
        return refused("Google sign-in is not configured on this connector.", 503)
    extra = [
        EXTRA_GOOGLE_SCOPES[s] for s in request.args.getlist("scope") if s in EXTRA_GOOGLE_SCOPES
    ]
    scopes = IDENTITY_SCOPES + extra
    flow = _google_flow(scopes)
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    url, _ = flow.authorization_url(
        state=state,
        nonce=nonce,
        access_type="offline",
        include_granted_scopes="true",
        prompt="consent",
    )
    client = _client()
    _in_outlook_dialog(client)
    record = {
        "browser": _browser_id(),
        "verifier": flow.code_verifier,
        "nonce": nonce,
        "scopes": scopes,
        "client": client,
        "next": return_path(request.args.get("next")),
    }
    get_store(current_app).set(f"oauth-state:{state}", json.dumps(record).encode(), STATE_SECONDS)
    return redirect(url)


@bp.get("/auth/google/callback")
def google_callback() -> ResponseReturnValue:
    record = _take_state(request.args.get("state", ""))
    if record is None:
        return refused("This sign-in has expired or was already used. Start again.")
    _in_outlook_dialog(record.get("client"))
    if record["browser"] != session.get("browser"):
        return refused("This sign-in was started in another browser. Start again here.")
    if "error" in request.args:
        return refused("Google sign-in was cancelled, so nothing was connected.")
    code = request.args.get("code")
    if not code:
        return refused("Google sent no authorization code.")
    flow = _google_flow(record["scopes"], record["verifier"])
    try:
        token = flow.fetch_token(code=code)
    except (OAuth2Error, RequestException, ValueError, Warning) as exc:
        log.warning("Google token exchange failed: %s", exc)
        return refused("Google did not complete the sign-in. Try again in a moment.", 502)
    verifier = current_app.extensions["connector.google_verifier"]
    try:
        claims = verifier.verify(
            str(token.get("id_token", "")), current_app.config["GOOGLE_OAUTH_CLIENT_ID"]
        )
    except InvalidToken as exc:
        log.warning("Google ID token refused: %s", exc)
        return refused("Google's answer could not be verified.")
    if claims.get("nonce") != record["nonce"]:
        return refused("Google's answer does not belong to this sign-in.")
    email = str(claims.get("email", "")).lower()
    if not email or claims.get("email_verified") is False:
        return refused("Google did not confirm an email address.")
    db = get_session()
    # A Workspace account of the domain (hd) speaks for the domain; a consumer Google
    # account with the same address does not.
    domain = domain_of(email)
    scope = token.get("scope") or record["scopes"]
    user = _link(
        db,
        Identity(Provider.GOOGLE, str(claims["sub"]), email, str(claims.get("name") or "")),
        vouches_for=lambda org: claims.get("hd") == domain,
        scopes=scope.split() if isinstance(scope, str) else [str(s) for s in scope],
        refresh_token=token.get("refresh_token"),
    )
    if user is None:
        return refused(f"{email} is not a user of this connector. Ask your admin to add you.", 403)
    if (refusal := _deactivated(db, user)) is not None:
        return refusal
    return _signed_in(
        db, user, email, record.get("client"), record.get("next"), provider=Provider.GOOGLE
    )


MS_SCOPES = ["User.Read"]
# Graph permissions a feature may ask for when it first needs them (incremental consent).
EXTRA_MS_SCOPES = {"mail.send": list(microsoft.REPLY_SCOPES)}


@bp.get("/auth/microsoft/start")
def microsoft_start() -> ResponseReturnValue:
    config = current_app.config
    if not config["MS_CLIENT_ID"] or not config["MS_CLIENT_SECRET"]:
        return refused("Microsoft sign-in is not configured on this connector.", 503)
    try:
        extra = [
            scope
            for name in request.args.getlist("scope")
            for scope in EXTRA_MS_SCOPES.get(name, [])
        ]
        ms_client = microsoft.MicrosoftClient.from_config(config)
        flow = microsoft.msal_app(ms_client).initiate_auth_code_flow(
            MS_SCOPES + extra, redirect_uri=config["PUBLIC_URL"] + "/auth/microsoft/callback"
        )
    except (ValueError, RequestException, MsalError) as exc:
        log.warning("Microsoft sign-in could not start: %s", exc)
        return refused("Microsoft sign-in is unavailable right now.", 502)
    client = _client()
    _in_outlook_dialog(client)
    record = {
        "browser": _browser_id(),
        "flow": flow,
        "client": client,
        "next": return_path(request.args.get("next")),
    }
    store = get_store(current_app)
    store.set(f"oauth-state:{flow['state']}", json.dumps(record).encode(), STATE_SECONDS)
    return redirect(flow["auth_uri"])


@bp.get("/auth/microsoft/callback")
def microsoft_callback() -> ResponseReturnValue:
    record = _take_state(request.args.get("state", ""))
    if record is None or "flow" not in record:
        return refused("This sign-in has expired or was already used. Start again.")
    _in_outlook_dialog(record.get("client"))
    if record["browser"] != session.get("browser"):
        return refused("This sign-in was started in another browser. Start again here.")
    if "error" in request.args:
        return refused("Microsoft sign-in was cancelled, so nothing was connected.")
    cache = msal.SerializableTokenCache()
    app = microsoft.msal_app(microsoft.MicrosoftClient.from_config(current_app.config), cache)
    try:
        result = app.acquire_token_by_auth_code_flow(record["flow"], request.args.to_dict())
    except (RequestException, MsalError, json.JSONDecodeError) as exc:
        # Entra unreachable, answering 5xx, or answering with an HTML error page.
        log.warning("Microsoft token exchange failed: %s", exc)
        return refused("Microsoft did not complete the sign-in. Try again in a moment.", 502)
    except (ValueError, RuntimeError) as exc:
        # msal raises on a state or nonce that does not match the flow it started.
        log.warning("Microsoft sign-in refused: %s", exc)
        return refused("Microsoft's answer does not belong to this sign-in.")
    if "error" in result:
        log.warning("Microsoft token exchange failed: %s", result.get("error"))
        return refused("Microsoft did not complete the sign-in. Try again in a moment.", 502)
    # msal has checked the ID token's nonce against the flow it started (raising if not).
    claims = result.get("id_token_claims") or {}
    email = str(claims.get("preferred_username") or claims.get("email") or "").lower()
    db = get_session()
    tenant = claims.get("tid")
    user = (
        _link(
            db,
            Identity(
                Provider.MICROSOFT, str(claims.get("oid")), email, str(claims.get("name") or "")
            ),
            # As for API tokens: a tenant speaks only for the organization bound to it,
            # for its existing users as for new ones.
            vouches_for=lambda org: (
                org.entra_tenant_id is not None and org.entra_tenant_id == tenant
            ),
            vouched_for_existing_users=True,
            scopes=str(result.get("scope", "")).split(),
            refresh_token=result.get("refresh_token"),
        )
        if email
        else None
    )
    if user is None:
        return refused(f"{email or 'This account'} is not a user of this connector here.", 403)
    if (refusal := _deactivated(db, user)) is not None:
        return refusal
    microsoft.save_cache(
        get_store(current_app), current_app.extensions["connector.token_cipher"], user.id, cache
    )
    return _signed_in(
        db, user, email, record.get("client"), record.get("next"), provider=Provider.MICROSOFT
    )


@dataclass(frozen=True)
class Identity:
    """Who the identity provider says signed in."""

    provider: Provider
    subject: str
    email: str
    name: str


def _link(
    db: Session,
    identity: Identity,
    *,
    vouches_for: Callable[[Organization], bool],
    scopes: list[str],
    refresh_token: str | None,
    vouched_for_existing_users: bool = False,
) -> User | None:
    """The connector user of this identity, with the account linked to them; None when the
    address is no user here.

    An address that is no user yet becomes a member of the organization whose sign-in
    domains include it, where the identity provider vouches for that organization.
    The same person signing in twice at once (two tabs, both add-ins) races on the
    unique address and account: the loser starts again and finds the winner's rows.
    Nothing is written before this, so rolling back loses nothing.
    """
    cipher = current_app.extensions["connector.token_cipher"]
    for attempt in (1, 2):
        try:
            user = find_user(db, identity.email)
            if user is not None:
                if vouched_for_existing_users and not vouches_for(user.organization):
                    return None
            else:
                free_mail = current_app.extensions["connector.settings"].free_mail
                org = org_for_sign_in_domain(db, identity.email, free_mail)
                if org is None or not vouches_for(org):
                    return None
                name = identity.name.strip() or identity.email.partition("@")[0]
                user = create_user(db, org, identity.email, name)
                log.info("Sign-in created user %s in organization %s", identity.email, org.id)
            service.link_account(
                db,
                cipher,
                user,
                identity.provider,
                identity.subject,
                identity.email,
                scopes,
                refresh_token,
            )
            return user
        except (ConflictError, IntegrityError, OperationalError) as exc:
            db.rollback()
            # A lost connection is an outage (a 503), not a race worth another try.
            if attempt == 2 or getattr(exc, "connection_invalidated", False):
                raise
    return None


def _signed_in(
    db: Any,
    user: User,
    email: str,
    client: str | None,
    next_path: str | None = None,
    *,
    provider: Provider,
) -> ResponseReturnValue:
    session["user_id"] = user.id
    audit.record(
        db,
        org_id=user.organization_id,
        actor=user,
        action="user.signed_in",
        target=f"user:{user.id}",
        detail={"provider": provider.value, "client": client or "web"},
    )
    if client == "outlook":
        # The Outlook dialog hands the pane a key of its own (messageParent).
        key, api_key = new_key(db, user, "Outlook add-in")
        audit.record(
            db,
            org_id=user.organization_id,
            actor=user,
            action="key.issued",
            target=f"key:{key.id}",
            detail={"user": user.email, "label": key.label},
        )
        db.commit()
        office_dialog(scripts=True)  # Office.js hands the key to the pane
        return (
            render_template("dialog_done.html", api_key=api_key, email=email),
            200,
            {"Cache-Control": "no-store"},
        )
    db.commit()
    back = return_path(next_path)
    if back is not None:
        return redirect(back, 303)  # the record page the person came to edit
    return page(
        "You're connected",
        f"Signed in as {email}. You can close this window.",
        links=[("Your account", url_for("accounts.account"))],
    )


def signed_in_user() -> User | None:
    """The user this browser signed in as; None when none, or when deactivated since
    (their session ends at once: the next page asks them to sign in, which refuses them)."""
    user_id = session.get("user_id")
    user = get_session().get(User, user_id) if user_id else None
    if user is not None and not user.active:
        session.pop("user_id", None)
        return None
    return user


DEACTIVATED = "Your access to this connector has been turned off. Ask your admin."


def _deactivated(db: Session, user: User) -> ResponseReturnValue | None:
    """The page that refuses a deactivated user's sign-in, with nothing kept of it."""
    if user.active:
        return None
    db.rollback()
    return refused(DEACTIVATED, 403)


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return str(session["csrf"])


def check_csrf() -> bool:
    sent = request.form.get("csrf", "")
    return bool(sent) and secrets.compare_digest(sent, str(session.get("csrf", "")))


@bp.get("/account")
def account() -> ResponseReturnValue:
    user = signed_in_user()
    if user is None:
        return redirect(url_for("accounts.connect"))
    db = get_session()
    keys = db.scalars(select(ApiKey).where(ApiKey.user_id == user.id).order_by(ApiKey.id)).all()
    return (
        render_template(
            "account.html",
            user=user,
            accounts=service.accounts_of(db, user),
            keys=keys,
            csrf=csrf_token(),
            notice=request.args.get("notice", ""),
        ),
        200,
        {"Cache-Control": "no-store"},
    )


_Row = TypeVar("_Row", ApiKey, LinkedAccount)


def _own_row(
    model: type[_Row], row_id: int
) -> tuple[_Row, None] | tuple[None, ResponseReturnValue]:
    """The signed-in user's own row for a POST from /account, or the page that refuses it."""
    user = signed_in_user()
    if user is None or not check_csrf():
        return None, refused("Your session has expired. Sign in again.", 403)
    row = get_session().get(model, row_id)
    if row is None or row.user_id != user.id:
        return None, refused("There is no such item on your account.", 404)
    return row, None


@bp.post("/account/keys/<int:key_id>/revoke")
def revoke_key(key_id: int) -> ResponseReturnValue:
    owned = _own_row(ApiKey, key_id)
    if owned[1] is not None:
        return owned[1]  # the page that refuses it
    key = owned[0]
    db = get_session()
    # Keys are checked against the database on every request: revoked here, refused
    # at once by every worker.
    revoke(db, key)
    audit.record(
        db,
        org_id=key.user.organization_id,
        actor=key.user,
        action="key.revoked",
        target=f"key:{key.id}",
        detail={"user": key.user.email, "label": key.label},
    )
    db.commit()
    return redirect(url_for("accounts.account", notice="Key revoked."))


@bp.post("/account/linked/<int:account_id>/disconnect")
def disconnect(account_id: int) -> ResponseReturnValue:
    owned = _own_row(LinkedAccount, account_id)
    if owned[1] is not None:
        return owned[1]  # the page that refuses it
    linked = owned[0]
    db = get_session()
    provider = linked.provider
    told = service.disconnect(
        db,
        get_store(current_app),
        current_app.extensions["connector.token_cipher"],
        linked,
        current_app.config["GOOGLE_REVOKE_URL"],
    )
    db.commit()
    if told:
        notice = "Account disconnected, and Google has withdrawn the connector's access."
    elif provider == Provider.GOOGLE:
        notice = (
            "Account disconnected here, but Google could not be told. To withdraw the "
            "connector's access there too, remove it at myaccount.google.com/permissions."
        )
    else:
        notice = (
            "Account disconnected. To withdraw the permissions you gave Microsoft too, "
            "remove the connector at myapps.microsoft.com."
        )
    return redirect(url_for("accounts.account", notice=notice))


def init_app(app: Flask) -> None:
    # Scopes granted can differ from those asked for (granular consent): oauthlib's
    # switch for that is an environment variable.
    os.environ.setdefault("OAUTHLIB_RELAX_TOKEN_SCOPE", "1")
    app.extensions["connector.token_cipher"] = TokenCipher.from_config(
        app.config["ENCRYPTION_KEY"], app.config["SECRET_KEY"]
    )
    app.register_blueprint(bp)
