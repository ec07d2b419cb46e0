"""The Gmail add-on's HTTP endpoints: Google POSTs event objects, we answer with cards.

Every request must carry the add-on's Google-signed system ID token; the user is
the one in the event's user ID token. Anything else gets a bare 401.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, cast

import google.oauth2.credentials
from flask import Blueprint, Flask, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from flask_smorest import abort
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.exc import SQLAlchemyError

from connector.db import get_session, is_outage, roll_back
from connector.errors import ServiceError
from connector.jobs import get_jobs
from connector.mailbox import Mailbox, SendUnconfirmed
from connector.orgs.context import Ctx
from connector.orgs.models import User
from connector.orgs.service import find_user
from connector.providers.google import sending
from connector.providers.google.gmail_api import GmailClient, GmailError
from connector.providers.google.tokens import GoogleTokenVerifier, InvalidToken, google_certificates
from connector.records.refs import RecordRef
from connector.store import StoreUnavailable, get_store
from connector.web.gmail import addon, cards, events
from connector.web.record_links import record_link

log = logging.getLogger(__name__)
bp = Blueprint("gmail", __name__, url_prefix="/gmail")

STATE_PARAMETER = "state"
STATE_MAX_AGE_SECONDS = 24 * 3600


class Unauthorized(Exception):
    pass


def _verifier() -> GoogleTokenVerifier:
    # Flask's extensions are Any; init_app (below) puts a GoogleTokenVerifier there.
    return cast(GoogleTokenVerifier, current_app.extensions["connector.google_verifier"])


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="gmail-action")


def _endpoint_audience() -> str:
    # Flask's config is Any; both settings are strings (connector.config).
    audience = cast(str | None, current_app.config["GOOGLE_AUDIENCE"])
    return audience or cast(str, current_app.config["PUBLIC_URL"]) + request.path


def _authenticate(event: dict[str, Any]) -> User | str:
    """The connector user behind the request, or the verified address that has no user."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized
    config = current_app.config
    try:
        _verifier().verify_system_token(
            token.strip(), _endpoint_audience(), config["GOOGLE_SERVICE_ACCOUNT"]
        )
        user_token = (event.get("authorizationEventObject") or {}).get("userIdToken")
        if not user_token or not config["GOOGLE_CLIENT_ID"]:
            raise InvalidToken("no user token")
        address = _verifier().verify_user_token(str(user_token), config["GOOGLE_CLIENT_ID"])
    except InvalidToken as exc:
        log.info("Gmail add-on request refused: %s", exc)
        raise Unauthorized from exc
    return find_user(get_session(), address) or address


def _act(user: User) -> cards.Act:
    base = current_app.config["PUBLIC_URL"] + "/gmail/actions/"
    serializer = _serializer()

    def act(name: str, /, **state: Any) -> dict[str, Any]:
        signed = serializer.dumps({"a": name, "u": user.id, "s": state})
        return {"function": base + name, "parameters": [{"key": STATE_PARAMETER, "value": signed}]}

    return act


def _state(event: dict[str, Any], user: User, name: str) -> dict[str, Any]:
    parameters = (event.get("commonEventObject") or {}).get("parameters") or {}
    signed = parameters.get(STATE_PARAMETER)
    if not signed:
        raise BadSignature("no state")
    payload = _serializer().loads(signed, max_age=STATE_MAX_AGE_SECONDS)
    if payload.get("a") != name or payload.get("u") != user.id:
        raise BadSignature("state for another action or user")
    return dict(payload.get("s") or {})


def _record_url(user: User) -> Callable[[str, int], str]:
    config = current_app.config

    def url(record_type: str, record_id: int) -> str:
        ref = RecordRef.of(record_type, record_id)
        return record_link(config["PUBLIC_URL"], config["SECRET_KEY"], user.id, ref)

    return url


def _gmail_client(message: addon.OpenMessage) -> GmailClient:
    return GmailClient(
        current_app.config["GMAIL_API_URL"], message.oauth_token, message.access_token
    )


def _request(event: dict[str, Any], user: User, state: dict[str, Any]) -> addon.AddonRequest:
    ctx = Ctx(
        session=get_session(),
        user=user,
        store=get_store(current_app),
        settings=current_app.extensions["connector.settings"],
    )
    return addon.AddonRequest(
        ctx=ctx,
        event=event,
        act=_act(user),
        state=state,
        message=addon.open_message(event, state),
        gmail_client=_gmail_client,
        record_url=_record_url(user),
        mailbox=_mailbox(user),
        consent_url=current_app.config["PUBLIC_URL"] + "/connect?scope=gmail.send",
        secret_key=current_app.config["SECRET_KEY"],
        send_outbound=_send_outbound,
    )


def _send_outbound(outbound_id: int) -> None:
    """After the commit: the worker signs and sends the row (connector.jobs.outbound). The
    message is saved either way: when the queue cannot be reached, the worker's sweep sends
    it within minutes, so this is no error for the writer (who would send it twice)."""
    try:
        get_jobs(current_app).enqueue("send_outbound", outbound_id=outbound_id)
    except Exception:
        log.exception("Message %s saved but not queued: the worker's sweep sends it", outbound_id)


def _mailbox(user: User) -> Callable[[addon.OpenMessage], Mailbox]:
    """The user's Gmail, replying to the open message; sending with their stored consent."""
    config = current_app.config

    def credentials() -> google.oauth2.credentials.Credentials:
        client = sending.GoogleClient(
            config["GOOGLE_OAUTH_CLIENT_ID"],
            config["GOOGLE_OAUTH_CLIENT_SECRET"],
            config["GOOGLE_TOKEN_URL"],
        )
        cipher = current_app.extensions["connector.token_cipher"]
        return sending.google_credentials(get_session(), cipher, client, user)

    def mailbox(message: addon.OpenMessage) -> Mailbox:
        return sending.GmailMailbox(
            _gmail_client(message),
            config["GMAIL_API_URL"],
            user.email,
            credentials,
            thread_id=message.thread_id,
        )

    return mailbox


UNAVAILABLE = (
    "The records are unavailable right now; nothing was saved. Try again in a few seconds."
)


def _problem(error: Exception) -> str:
    if isinstance(error, ServiceError):
        return error.message
    if is_outage(error):
        log.warning("Gmail add-on request during an outage: %s", error)
        return UNAVAILABLE
    if isinstance(error, SendUnconfirmed):
        log.warning("Gmail send unconfirmed: %s", error)
        return (
            "Gmail did not confirm that the reply went out. Look in Sent before you send it again."
        )
    if isinstance(error, GmailError):
        log.warning("Gmail API call failed: %s", error)
        return "Gmail could not be reached. Try again in a moment."
    log.exception("Gmail add-on request failed")
    return "The records are unavailable right now. Try again in a moment."


def _handle(kind: str, name: str = "") -> ResponseReturnValue:
    # Not JSON (or too deep, or not text) is a 400 in the one error shape, from get_json.
    event = request.get_json(force=True)
    problems = events.event_problems(event)
    if problems:
        # Google sends objects where objects go: anything else is not an add-on event.
        abort(400, message="This is not an add-on event.", errors=problems)
    try:
        user_or_address = _authenticate(event)
    except Unauthorized:
        abort(401, message="Unauthorized.")
    is_trigger = kind != "action"
    if not isinstance(user_or_address, User):
        access = cards.no_access_card(
            user_or_address, current_app.config["PUBLIC_URL"] + "/connect"
        )
        return jsonify(cards.push(access) if is_trigger else cards.render(push_card=access))
    user = user_or_address
    if not user.active:
        return jsonify(
            _error_card(
                "Your access to the connector has been turned off. Ask your connector admin.",
                is_trigger,
            )
        )
    if kind == "action" and name not in addon.ACTIONS:
        return jsonify(code=404, status="Not Found", message="No such action."), 404
    try:
        unsigned = is_trigger or name in addon.UNSIGNED_ACTIONS
        state = {} if unsigned else _state(event, user, name)
    except BadSignature:
        return jsonify(cards.render(notification="This card is out of date. Reopen the email."))
    try:
        add_on_request = _request(event, user, state)
        if kind == "homepage":
            body = addon.homepage(add_on_request)
        elif kind == "message":
            body = addon.message(add_on_request)
        elif kind == "compose":
            body = addon.compose(add_on_request)
        else:
            body = addon.ACTIONS[name](add_on_request)
    except (
        ServiceError,
        GmailError,
        SendUnconfirmed,
        SQLAlchemyError,
        StoreUnavailable,
        KeyError,
        ValueError,
    ) as error:
        roll_back(get_session())
        body = _error_card(_problem(error), is_trigger)
    return jsonify(body)


def _error_card(text: str, is_trigger: bool) -> dict[str, Any]:
    if is_trigger:
        return cards.push(cards.notice_card("Something went wrong", text))
    return cards.render(notification=text)


@bp.errorhandler(SQLAlchemyError)
@bp.errorhandler(StoreUnavailable)
def _outage(error: Exception) -> ResponseReturnValue:
    """An outage met before the add-on's own handling (signing the user in): an error card
    too, since Google shows only its own generic error for anything but a card."""
    if not is_outage(error):
        raise error
    roll_back(get_session())
    return jsonify(_error_card(_problem(error), request.endpoint != "gmail.action"))


@bp.post("/homepage")
def homepage() -> ResponseReturnValue:
    return _handle("homepage")


@bp.post("/message")
def message() -> ResponseReturnValue:
    return _handle("message")


@bp.post("/compose")
def compose() -> ResponseReturnValue:
    return _handle("compose")


@bp.post("/actions/<name>")
def action(name: str) -> ResponseReturnValue:
    return _handle("action", name)


def init_app(app: Flask) -> None:
    app.extensions["connector.google_verifier"] = GoogleTokenVerifier(
        google_certificates(app.config["GOOGLE_CERTS_URL"])
    )
    app.register_blueprint(bp)
