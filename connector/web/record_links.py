"""Read-only record pages behind signed links: "Open in the connector" from a mail client.

A link names the user it was made for and the record, is signed with the secret
key and expires; the page shows the same card the API returns.
"""

from __future__ import annotations

from flask import Flask, abort, current_app, render_template, request
from flask.typing import ResponseReturnValue
from itsdangerous import BadSignature, URLSafeTimedSerializer

from connector.db import get_session
from connector.errors import NotFound
from connector.lookup.service import record_card
from connector.orgs.context import Ctx
from connector.orgs.models import User
from connector.records.models import RecordType
from connector.records.refs import RecordRef
from connector.store import get_store

LINK_MAX_AGE_SECONDS = 7 * 24 * 3600


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt="record-link")


def record_link(public_url: str, secret_key: str, user_id: int, ref: RecordRef) -> str:
    token = _serializer(secret_key).dumps([user_id, ref.type.value, ref.id])
    return f"{public_url}/records/{ref.type.value}/{ref.id}?t={token}"


def init_app(app: Flask) -> None:
    @app.get("/records/<record_type>/<int:record_id>")
    def record_page(record_type: str, record_id: int) -> ResponseReturnValue:
        try:
            user_id, kind, number = _serializer(current_app.config["SECRET_KEY"]).loads(
                request.args.get("t", ""), max_age=LINK_MAX_AGE_SECONDS
            )
        except (BadSignature, ValueError, TypeError):
            abort(403, "This link is not valid any more: open the record again from your mail.")
        if (
            kind != record_type
            or number != record_id
            or record_type not in {t.value for t in RecordType}
        ):
            abort(403, "This link is not valid.")
        session = get_session()
        user = session.get(User, user_id)
        if user is None:
            abort(403, "This link is not valid.")
        ctx = Ctx(session, user, get_store(app), app.extensions["connector.settings"])
        try:
            card = record_card(ctx, RecordRef.of(record_type, record_id))
        except NotFound:
            abort(404, "This record does not exist any more.")
        main = card.get(record_type) or card.get("contact") or card.get("company") or {}
        title = main.get("name") or main.get("title") or main.get("subject") or record_type
        page = render_template(
            "record.html", card=card, title=title, subtitle=record_type.capitalize()
        )
        # Customer data behind a bearer link: kept out of shared caches and history caches.
        return page, 200, {"Cache-Control": "no-store"}
